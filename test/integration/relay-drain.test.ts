// Graceful stop: on SIGTERM new sessions get 421, and the queue is handed to a peer relay of the
// pool (relay-handoff.test.ts tests the handoff itself); without a peer, what cannot be delivered
// stays in the spool.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import {
  rawMessage,
  readAccounting,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  startSink,
  tempDir,
  waitFor,
  writeHandoffSecret,
} from '../helpers/relay/peers.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection(port, '127.0.0.1');
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString());
    });
    socket.once('error', (e) => resolve(`error ${e.message}`));
  });
}

describe('relay drain', () => {
  test('SIGTERM hands every queued message to the peer relay, which delivers it', async () => {
    const sink = await startSink();
    const blackhole = await startScripted();
    blackhole.onData = () => ({ code: 451, message: '4.3.0 not now' });
    const spoolA = await tempDir('spoolA');
    const spoolB = await tempDir('spoolB');
    cleanups.push(
      () => sink.stop(),
      () => blackhole.stop(),
      () => removeDir(spoolA),
      () => removeDir(spoolB),
    );
    const secretFile = await writeHandoffSecret(spoolB);
    const peer = await startRelay(
      relayConfig(spoolB, sink.port, { handoff: { host: '127.0.0.1', port: 0, secretFile, peers: [] } }),
    );
    cleanups.push(() => peer.stop());
    const relay = await startRelay(
      relayConfig(spoolA, blackhole.port, {
        // The peer keeps A's retry schedule: a short one so it delivers within the test.
        retry: { firstRetry: '1s', maxBackoff: '2s', maxQueueLifetime: '5d' },
        handoff: { host: '127.0.0.1', port: 0, secretFile, peers: [`127.0.0.1:${peer.ports.handoff}`] },
        drainTimeout: '20s',
      }),
    );
    cleanups.push(() => relay.stop());
    for (let i = 0; i < 50; i++) {
      const r = await sendMessage(relay.ports.smtp, {
        from: 'a@example.com',
        to: [`r${i}@example.org`, `s${i}@example.net`],
        raw: rawMessage(`h${i}`),
      });
      assert.ok(r.ok);
    }
    await waitFor(
      async () => (await readAccounting(spoolA)).filter((l) => l.outcome === 'deferred').length >= 100,
      10000,
      'deferrals',
    );
    const exited = new Promise<number | null>((r) => relay.proc.once('exit', (code) => r(code)));
    relay.proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    await waitFor(async () => (await sink.messages()).length === 50, 20000, 'the peer to deliver all 50');
    const handedOff = (await readAccounting(spoolA)).filter((l) => l.outcome === 'handedoff');
    assert.equal(handedOff.length, 100);
    assert.deepEqual(await readdir(join(spoolA, 'queue')), []);
  });

  test('without a peer, new sessions get 421 while draining and what cannot be delivered stays in the spool', async () => {
    const blackhole = await startScripted();
    blackhole.onData = () => ({ code: 451, message: '4.3.0 not now' });
    const spool = await tempDir('spool');
    cleanups.push(
      () => blackhole.stop(),
      () => removeDir(spool),
    );
    const config = relayConfig(spool, blackhole.port, {
      // The window in which the test must connect and see the 421 (a loaded machine is slow).
      drainTimeout: '10s',
      retry: { firstRetry: '1h', maxBackoff: '1h', maxQueueLifetime: '5d' },
    });
    const relay = await startRelay(config);
    const r = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['b@example.org'],
      raw: rawMessage('stay'),
    });
    assert.ok(r.ok);
    const stopped = relay.stop('SIGTERM');
    // The drain lasts drainTimeout here (the message cannot be delivered): new sessions get 421.
    await waitFor(() => relay.logs.some((l) => l.includes('drain started')), 5000, 'drain start');
    assert.match(await greeting(relay.ports.smtp), /^421 /);
    await stopped;
    assert.equal((await readdir(join(spool, 'queue'))).filter((n) => n.endsWith('.msg')).length, 1);
    blackhole.onData = () => undefined;
    const again = await startRelay(config, relay.configPath);
    cleanups.push(() => again.stop());
    const res = await again.http('/api/messages');
    const list = (await res.json()) as { messages: { id: string }[] };
    assert.equal(list.messages.length, 1);
    const retry = await again.http(`/api/messages/${list.messages[0]!.id}/retry`, { method: 'POST' });
    assert.equal(retry.status, 202);
    await waitFor(() => blackhole.received.length === 1, 10000, 'delivery after retry-now');
  });
});
