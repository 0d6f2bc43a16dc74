// The durable spool under failure: corrupt files at start, write/fsync failures, a full disk, and
// config reloads (a valid one applies, an invalid one is counted and ignored).
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { encodeMessage } from '../../relay/src/spool/record.ts';
import { encodeBatch } from '../../relay/src/spool/batch.ts';
import { nodeSpoolFs, type SpoolFs } from '../../relay/src/spool/fs-ops.ts';
import { loadRuntime } from '../../relay/src/config/runtime.ts';
import { Relay } from '../../relay/src/relay.ts';
import {
  freePort,
  rawMessage,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  startSink,
  tempDir,
  waitFor,
  writeConfig,
  type RelayProcess,
  type Sink,
} from '../helpers/relay/peers.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function sinkAndSpool(): Promise<{ sink: Sink; spool: string }> {
  const sink = await startSink();
  const spool = await tempDir('spool');
  cleanups.push(
    () => sink.stop(),
    () => removeDir(spool),
  );
  return { sink, spool };
}

async function relayProcess(config: Record<string, unknown>): Promise<RelayProcess> {
  const relay = await startRelay(config);
  cleanups.push(() => relay.stop());
  return relay;
}

describe('relay spool', () => {
  test('corrupt and truncated spool files are quarantined at start; good ones are delivered', async () => {
    const { sink, spool } = await sinkAndSpool();
    const queue = join(spool, 'queue');
    await mkdir(queue, { recursive: true });
    const envelope = (id: string) => ({
      id,
      from: 'a@example.com',
      recipients: ['b@example.org'],
      receivedAt: Date.now(),
      client: { address: '127.0.0.1', helo: 't' },
    });
    await writeFile(
      join(queue, 'GOOD1.msg'),
      encodeMessage(envelope('GOOD1'), Buffer.from(rawMessage('good1'))),
    );
    const truncated = encodeMessage(envelope('TRUNC1'), Buffer.from(rawMessage('trunc1')));
    await writeFile(join(queue, 'TRUNC1.msg'), truncated.subarray(0, truncated.length - 10));
    await writeFile(join(queue, 'JUNK1.msg'), 'this is not a spool record');
    const relay = await relayProcess(relayConfig(spool, sink.port));
    // smtp-sink creates a message's dump file before its bytes are in it: wait for the subject.
    await waitFor(
      async () => (await sink.messages()).some((m) => /Subject: test \w+/.test(m)),
      10000,
      'the good message',
    );
    assert.equal((await sink.messages()).length, 1);
    assert.match((await sink.messages())[0]!, /Subject: test good1/);
    assert.equal(await relay.metric('mailfleet_relay_spool_quarantined_total'), 2);
    assert.deepEqual((await readdir(join(spool, 'quarantine'))).sort(), ['JUNK1.msg', 'TRUNC1.msg']);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await sink.messages()).length, 1, 'half a message is never delivered');
  });

  test('a torn journal batch at start: its whole messages are delivered, the tear is quarantined and counted', async () => {
    const { sink, spool } = await sinkAndSpool();
    const journal = join(spool, 'journal');
    await mkdir(journal, { recursive: true });
    const record = (id: string) =>
      encodeMessage(
        {
          id,
          from: 'a@example.com',
          recipients: ['b@example.org'],
          receivedAt: Date.now(),
          client: { address: '127.0.0.1', helo: 't' },
        },
        Buffer.from(rawMessage(id.toLowerCase())),
      );
    // Killed after the batch was fsynced but before the copies in queue/ were written, and a
    // second batch torn mid-write (never acknowledged).
    await writeFile(join(journal, 'B1.jnl'), encodeBatch([record('WHOLE1'), record('WHOLE2')]).file);
    const torn = encodeBatch([record('WHOLE3'), record('TORN1')]).file;
    await writeFile(join(journal, 'B2.jnl'), torn.subarray(0, torn.length - 40));
    const relay = await relayProcess(relayConfig(spool, sink.port));
    // smtp-sink creates a message's dump file before its bytes are in it: wait for the subjects.
    const subjects = async () =>
      (await sink.messages()).map((m) => /Subject: test (\w+)/.exec(m)?.[1]).sort();
    await waitFor(
      async () => (await subjects()).filter(Boolean).length === 3,
      10000,
      'the three whole messages',
    );
    assert.deepEqual(await subjects(), ['whole1', 'whole2', 'whole3']);
    assert.equal(await relay.metric('mailfleet_relay_spool_quarantined_total'), 1);
    assert.deepEqual(await readdir(join(spool, 'quarantine')), ['B2.jnl']);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await sink.messages()).length, 3, 'half a message is never delivered');
    await waitFor(async () => (await readdir(journal)).length === 0, 10000, 'the journal to empty');
    assert.deepEqual(await readdir(join(spool, 'queue')), []);
  });

  test('a full disk gives 452 4.3.1 at MAIL FROM and not-ready, and recovers when space returns', async () => {
    const { sink, spool } = await sinkAndSpool();
    const full = relayConfig(spool, sink.port, {
      spool: { dir: spool, minFreeBytes: Number.MAX_SAFE_INTEGER },
    });
    const relay = await relayProcess(full);
    const refused = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('full'),
    });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 452);
    assert.match(refused.response, /4\.3\.1/);
    assert.equal((await relay.http('/readyz')).status, 503);
    // Space "returns": the threshold drops below the real free space (a valid reload).
    await writeConfig(
      relay.configPath,
      relayConfig(spool, sink.port, { spool: { dir: spool, minFreeBytes: 1024 } }),
    );
    await waitFor(async () => (await relay.http('/readyz')).status === 200, 10000, 'ready again');
    const ok = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('space'),
    });
    assert.ok(ok.ok, ok.response);
    assert.equal(await relay.metric('mailfleet_relay_config_reloads_total', { result: 'success' }), 1);
  });

  test('a spool quota (spool.maxBytes, an emptyDir sizeLimit) counts the queued bytes: past it less minFreeBytes, 452 4.3.1 and not ready', async () => {
    // Nothing listens upstream: every message stays queued, so the spool only grows.
    const spool = await tempDir('spool');
    cleanups.push(() => removeDir(spool));
    const closed = await freePort();
    const quota = (maxBytes: number) =>
      relayConfig(spool, closed, { spool: { dir: spool, minFreeBytes: 64 * 1024, maxBytes } });
    const relay = await relayProcess(quota(256 * 1024));
    const big = (id: string) => rawMessage(id, `${'x'.repeat(76)}\r\n`.repeat(1300));
    for (const id of ['q1', 'q2']) {
      const sent = await sendMessage(relay.ports.smtp, {
        from: 'a@example.com',
        to: ['b@example.org'],
        raw: big(id),
      });
      assert.ok(sent.ok, sent.response);
    }
    // 2 x ~100 KB queued: less than 64 KB is left under the 256 KB quota, while the disk has plenty.
    await waitFor(async () => (await relay.http('/readyz')).status === 503, 10000, 'not ready at the quota');
    assert.ok((await relay.metric('mailfleet_relay_spool_free_bytes')) < 64 * 1024);
    const refused = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('q3'),
    });
    assert.equal(refused.code, 452, refused.response);
    assert.match(refused.response, /4\.3\.1/);
    // A larger quota (a valid reload): ready again, mail accepted.
    await writeConfig(relay.configPath, quota(4 * 1024 * 1024));
    await waitFor(async () => (await relay.http('/readyz')).status === 200, 10000, 'ready again');
    const ok = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('q4'),
    });
    assert.ok(ok.ok, ok.response);
  });

  test('a big message is written to a journal batch of its own as it arrives; after kill -9 it is delivered byte for byte', async () => {
    // Nothing listens upstream at first: the message stays queued in its streamed batch.
    const spool = await tempDir('spool');
    cleanups.push(() => removeDir(spool));
    const closed = await freePort();
    const relay = await relayProcess(relayConfig(spool, closed));
    // 1.3 MB: lines that start with dots (stuffed on the wire both ways), long and short lines.
    const lines: string[] = [];
    for (let i = 0; lines.join('').length < 1_300_000; i++)
      lines.push(i % 7 === 0 ? `.${i} dot line\r\n` : i % 5 === 0 ? '..\r\n' : `${'z'.repeat(i % 990)}\r\n`);
    const raw = rawMessage('streamed-big', lines.join(''));
    const sent = await sendMessage(relay.ports.smtp, { from: 'a@example.com', to: ['b@example.org'], raw });
    assert.ok(sent.ok, sent.response);
    const journal = (await readdir(join(spool, 'journal'))).filter((n) => n.endsWith('.jnl'));
    assert.equal(journal.length, 1);
    const head = Buffer.alloc(10);
    const file = await open(join(spool, 'journal', journal[0]!));
    await file.read(head, 0, 10, 0);
    await file.close();
    assert.equal(head.toString('latin1'), 'MFS1\nMFQ2\n', 'a streamed batch around a version 2 record');
    await relay.stop('SIGKILL');
    const upstream = await startScripted();
    cleanups.push(() => upstream.stop());
    await relayProcess(relayConfig(spool, upstream.port));
    await waitFor(async () => upstream.received.length === 1, 20000, 'the recovered message');
    const delivered = upstream.received[0]!.raw;
    const ours = delivered.indexOf('\r\nFrom: a@example.com\r\n');
    assert.match(delivered.slice(0, ours), /^Received: from /);
    assert.equal(delivered.slice(ours + 2), raw);
  });

  test('a big message damaged on disk after its 250 is never sent whole: the session is dropped before the end of data, the message quarantined', async () => {
    // Nothing listens upstream at first: the message waits in its streamed batch.
    const spool = await tempDir('spool');
    cleanups.push(() => removeDir(spool));
    const port = await freePort();
    const relay = await relayProcess(relayConfig(spool, port));
    const raw = rawMessage('damaged-big', `${'d'.repeat(998)}\r\n`.repeat(600));
    const sent = await sendMessage(relay.ports.smtp, { from: 'a@example.com', to: ['b@example.org'], raw });
    assert.ok(sent.ok, sent.response);
    const [batch, ...others] = (await readdir(join(spool, 'journal'))).filter((n) => n.endsWith('.jnl'));
    assert.equal(others.length, 0);
    // One byte of the body flipped, as a failing disk would.
    const file = await open(join(spool, 'journal', batch!), 'r+');
    await file.write(Buffer.from('D'), 0, 1, 300_000);
    await file.close();
    const upstream = await startRawUpstream(port);
    cleanups.push(() => upstream.stop());
    await waitFor(
      async () => upstream.sessions.some((s) => s.closed && s.data !== undefined),
      20000,
      'a DATA session that ended',
    );
    // Past the next retry (maxBackoff 2s): nothing is tried again.
    await new Promise((r) => setTimeout(r, 3000));
    const data = upstream.sessions.filter((s) => s.data !== undefined);
    assert.equal(data.length, 1, 'one DATA, never repeated');
    const got = Buffer.concat(data[0]!.data!).toString('latin1');
    assert.ok(got.length > 0, 'the message was being streamed');
    assert.equal(got.includes('\r\n.\r\n'), false, 'no end of data');
    assert.equal(upstream.accepted, 0);
    assert.equal(await relay.metric('mailfleet_relay_spool_quarantined_total'), 1);
    // Its record (and its recipient states, when an attempt was recorded before) kept for a human.
    const kept = await readdir(join(spool, 'quarantine'));
    assert.equal(kept.filter((n) => n.endsWith('.jnl')).length, 1, kept.join(' '));
    assert.deepEqual(
      (await readdir(join(spool, 'journal'))).filter((n) => n.endsWith('.jnl')),
      [],
      'no longer queued',
    );
  });

  test('a client gone in the middle of a big message leaves no file and nothing queued', async () => {
    const { sink, spool } = await sinkAndSpool();
    const relay = await relayProcess(relayConfig(spool, sink.port));
    const socket = createConnection(relay.ports.smtp, '127.0.0.1');
    const replies: string[] = [];
    socket.on('data', (c: Buffer) => replies.push(c.toString()));
    socket.on('error', () => undefined);
    const waitReplies = (n: number) =>
      waitFor(
        async () =>
          replies
            .join('')
            .split('\r\n')
            .filter((l) => /^\d{3} /.test(l)).length >= n,
        5000,
        `${n} replies`,
      );
    await waitReplies(1);
    for (const [i, line] of [
      'EHLO c.test',
      'MAIL FROM:<a@example.com>',
      'RCPT TO:<b@example.org>',
      'DATA',
    ].entries()) {
      socket.write(`${line}\r\n`);
      await waitReplies(i + 2);
    }
    socket.write(rawMessage('gone', `${'y'.repeat(998)}\r\n`.repeat(700)));
    await waitFor(
      async () => (await readdir(join(spool, 'tmp'))).length === 1,
      5000,
      'the streamed file in tmp/',
    );
    socket.destroy();
    await waitFor(async () => (await readdir(join(spool, 'tmp'))).length === 0, 5000, 'tmp/ emptied');
    assert.deepEqual(await readdir(join(spool, 'journal')), []);
    assert.deepEqual(await readdir(join(spool, 'queue')), []);
  });

  test('an invalid config change is logged, counted and ignored; the old config keeps running', async () => {
    const { sink, spool } = await sinkAndSpool();
    const relay = await relayProcess(relayConfig(spool, sink.port));
    await writeConfig(relay.configPath, { ...relayConfig(spool, sink.port), http: { port: 70000 } });
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_config_reloads_total', { result: 'failure' })) === 1,
      10000,
      'the failed reload',
    );
    assert.ok(relay.logs.some((l) => l.includes('config reload rejected') && l.includes('http.port')));
    const ok = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('old'),
    });
    assert.ok(ok.ok);
    // A valid change then applies without a restart: a new sending domain is accepted.
    const refused = await sendMessage(relay.ports.smtp, {
      from: 'a@new.example',
      to: ['b@example.org'],
      raw: rawMessage('n'),
    });
    assert.equal(refused.code, 550);
    await writeConfig(
      relay.configPath,
      relayConfig(spool, sink.port, {
        sendingDomains: [{ domain: 'example.com' }, { domain: 'new.example' }],
      }),
    );
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_config_reloads_total', { result: 'success' })) === 1,
      10000,
      'the good reload',
    );
    const accepted = await sendMessage(relay.ports.smtp, {
      from: 'a@new.example',
      to: ['b@example.org'],
      raw: rawMessage('n2'),
    });
    assert.ok(accepted.ok, accepted.response);
  });

  test('a failing fsync gives 451 4.3.0 and leaves nothing queued', async () => {
    const { sink, spool } = await sinkAndSpool();
    const dir = await tempDir('cfg');
    cleanups.push(() => removeDir(dir));
    const configPath = join(dir, 'relay.yaml');
    await writeConfig(configPath, relayConfig(spool, sink.port));
    const loaded = await loadRuntime(configPath, { defaultHostname: 'test' });
    assert.ok(loaded.ok);
    let failing = false;
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      syncFile: async (fd) => {
        if (!failing) return nodeSpoolFs.syncFile(fd);
        throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      },
    };
    const relay = new Relay({
      configPath,
      runtime: loaded.runtime,
      defaultHostname: 'test',
      log: () => undefined,
      spoolFs: fs,
    });
    await relay.start();
    cleanups.push(() => relay.close());
    failing = true;
    const refused = await sendMessage(relay.ports.smtp!, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('eio'),
    });
    assert.equal(refused.code, 451);
    assert.match(refused.response, /4\.3\.0/);
    // A big message, streamed to its own batch as it arrived: the same refusal, nothing left.
    const big = await sendMessage(relay.ports.smtp!, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('eio-big', `${'x'.repeat(76)}\r\n`.repeat(8000)),
    });
    assert.equal(big.code, 451, big.response);
    assert.deepEqual(await readdir(join(spool, 'queue')), []);
    assert.deepEqual(await readdir(join(spool, 'tmp')), []);
    assert.deepEqual(await readdir(join(spool, 'journal')), []);
    assert.equal(relay.scheduler.messages.size, 0);
    failing = false;
    const ok = await sendMessage(relay.ports.smtp!, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('ok'),
    });
    assert.ok(ok.ok);
    await waitFor(
      async () => (await sink.messages()).length === 1,
      10000,
      'delivery after the disk recovered',
    );
  });
});

/** One session seen by startRawUpstream: the bytes after DATA's 354 (undefined: no DATA). */
interface RawSession {
  data: Buffer[] | undefined;
  closed: boolean;
}

/**
 * A bare SMTP server on `port` that keeps every byte after DATA's 354, so a test sees what a
 * receiver got of a transaction that never ended. Answers 250 to an end of data (counted).
 */
async function startRawUpstream(
  port: number,
): Promise<{ sessions: RawSession[]; accepted: number; stop(): Promise<void> }> {
  const upstream = { sessions: [] as RawSession[], accepted: 0, stop: async () => undefined };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const session: RawSession = { data: undefined, closed: false };
    upstream.sessions.push(session);
    sockets.add(socket);
    let pending = '';
    let inData = false;
    socket.on('error', () => undefined);
    socket.on('close', () => (session.closed = true));
    socket.on('data', (chunk: Buffer) => {
      if (inData && session.data) {
        session.data.push(chunk);
        if (Buffer.concat(session.data).includes('\r\n.\r\n')) {
          upstream.accepted++;
          inData = false;
          socket.write('250 ok\r\n');
        }
        return;
      }
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n'); end !== -1; end = pending.indexOf('\r\n')) {
        const verb = pending.slice(0, end).split(' ')[0]!.toUpperCase();
        pending = pending.slice(end + 2);
        if (verb === 'EHLO') socket.write('250-up.test\r\n250 8BITMIME\r\n');
        else if (verb === 'DATA') {
          session.data = [];
          inData = true;
          socket.write('354 go on\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
    socket.write('220 up.test\r\n');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  upstream.stop = () =>
    new Promise((resolve) => {
      server.close(() => resolve(undefined));
      for (const socket of sockets) socket.destroy();
    });
  return upstream;
}
