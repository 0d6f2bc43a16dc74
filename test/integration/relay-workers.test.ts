// A relay of several worker processes (config `workers`, relay/src/workers/): real processes, real
// smtp-sink. The workers share the SMTP port, each spools into its own shard, the primary serves
// one management port over all of them, restarts a worker killed with -9 (its shard recovered, no
// acknowledged message lost), drains every worker (handoff included) on SIGTERM, and the workers
// together enforce a rate limit once, not once each, also after a reload lowers a limit below the
// worker count; a worker restarted after a suppression change refuses the address too.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ROOT,
  deliveredIds,
  freePort,
  relayConfig,
  rawMessage,
  removeDir,
  sendMessage,
  startRelay,
  startSink,
  submitMany,
  tempDir,
  waitFor,
  writeConfig,
  writeHandoffSecret,
  type RelayProcess,
  type Sink,
} from '../helpers/relay/peers.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function start(
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<RelayProcess> {
  const relay = await startRelay(config, undefined, env);
  cleanups.push(() => relay.stop('SIGKILL'));
  return relay;
}

async function spoolDir(): Promise<string> {
  const dir = await tempDir('spool');
  cleanups.push(() => removeDir(dir));
  return dir;
}

async function sink(port?: number): Promise<Sink> {
  const s = await startSink(port === undefined ? {} : { port });
  cleanups.push(() => s.stop());
  return s;
}

/** Message-IDs of the complete messages the sink holds (a dump still being written has none yet). */
async function delivered(s: Sink): Promise<Map<string, number>> {
  const ids = deliveredIds((await s.messages()).map((raw) => ({ raw })));
  ids.delete('');
  return ids;
}

async function queued(relay: RelayProcess): Promise<number> {
  return ((await (await relay.http('/api/queue')).json()) as { messages: number }).messages;
}

/** Files of a shard's journal: a shard that spooled a message has one. */
async function journalFiles(dir: string): Promise<number> {
  return (await readdir(join(dir, 'journal')).catch(() => [])).length;
}

/** Pids of the workers, from the primary's "worker started" lines (the latest per worker). */
function workerPids(relay: RelayProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of relay.logs) {
    if (!line.includes('"worker started"')) continue;
    const { worker, pid } = JSON.parse(line) as { worker: number; pid: number };
    pids.set(worker, pid);
  }
  return pids;
}

/** Opens an SMTP session and reads its greeting; the socket stays open until the caller ends it. */
function greeting(port: number): Promise<{ line: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('error', reject);
    socket.once('data', (data) => resolve({ line: data.toString('latin1'), socket }));
  });
}

function logged(relay: RelayProcess, text: string): number {
  return relay.logs.filter((l) => l.includes(text)).length;
}

function exited(relay: RelayProcess): Promise<number | null> {
  return new Promise((r) =>
    relay.proc.exitCode !== null ? r(relay.proc.exitCode) : relay.proc.once('exit', (code) => r(code)),
  );
}

describe('relay worker processes', () => {
  test('two workers share the SMTP port, spool into their own shards, and answer as one relay; a worker killed with -9 is restarted and its shard delivered', async () => {
    const spool = await spoolDir();
    // Nothing listens upstream yet: the accepted mail stays queued in the shards.
    const upstreamPort = await freePort();
    const relay = await start(relayConfig(spool, upstreamPort, { workers: 2 }));
    const acked = await submitMany(relay.ports.smtp, 40, 'w');
    assert.equal(acked.length, 40);

    assert.ok((await journalFiles(spool)) > 0, 'worker 0 spooled into the spool directory');
    assert.ok((await journalFiles(join(spool, 'shard-1'))) > 0, 'worker 1 spooled into shard-1');
    await waitFor(async () => (await queued(relay)) === 40, 10_000, 'the queue API to list both shards');
    assert.equal(await relay.metric('mailfleet_relay_messages_received_total'), 40);
    assert.equal(await relay.metric('mailfleet_relay_ready'), 1);
    const listing = (await (await relay.http('/api/messages?limit=1000')).json()) as {
      messages: { id: string }[];
    };
    assert.equal(listing.messages.length, 40);
    for (const { id } of listing.messages.slice(0, 5)) {
      assert.equal((await relay.http(`/api/messages/${id}`)).status, 200, `message ${id} found in its shard`);
    }
    assert.equal((await relay.http('/api/messages/nosuchid')).status, 404);
    assert.equal(
      (await relay.http('/api/queue', { headers: { authorization: 'Bearer wrong' } })).status,
      401,
    );

    const before = workerPids(relay);
    process.kill(before.get(1)!, 'SIGKILL');
    await waitFor(
      () => workerPids(relay).get(1) !== before.get(1),
      15_000,
      'the primary to restart worker 1',
    );
    await waitFor(async () => (await fetch(`${relay.base}/readyz`)).status === 200, 15_000, 'ready again');
    assert.equal(await queued(relay), 40, 'the restarted worker recovered its shard');

    const upstream = await sink(upstreamPort);
    await waitFor(async () => (await delivered(upstream)).size === 40, 30_000, 'every message delivered');
    const ids = await delivered(upstream);
    assert.deepEqual([...ids.keys()].sort(), [...acked].sort());
    assert.equal(workerPids(relay).get(0), before.get(0), 'worker 0 kept running');
  });

  test('SIGTERM drains every worker: both shards are handed off to a peer, then the relay exits 0', async () => {
    const upstream = await sink();
    const dir = await tempDir('handoff');
    cleanups.push(() => removeDir(dir));
    const secretFile = await writeHandoffSecret(dir);
    const ports = { a: await freePort(), b: await freePort() };
    const peers = [`127.0.0.1:${ports.a}`, `127.0.0.1:${ports.b}`];
    const downPort = await freePort();
    const a = await start(
      relayConfig(await spoolDir(), downPort, {
        workers: 2,
        handoff: { host: '127.0.0.1', port: ports.a, secretFile, peers },
        drainTimeout: '30s',
      }),
    );
    const b = await start(
      relayConfig(await spoolDir(), upstream.port, {
        handoff: { host: '127.0.0.1', port: ports.b, secretFile, peers },
      }),
    );
    const acked = await submitMany(a.ports.smtp, 30, 'd');
    assert.equal(acked.length, 30);
    assert.ok((await journalFiles(join(a.spoolDir, 'shard-1'))) > 0, 'worker 1 holds part of the queue');
    a.proc.kill('SIGTERM');
    assert.equal(await exited(a), 0);
    await waitFor(async () => (await delivered(upstream)).size === 30, 30_000, 'B to deliver all 30');
    assert.deepEqual([...(await delivered(upstream)).keys()].sort(), [...acked].sort());
    assert.equal(await b.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' }), 30);
  });

  test('restarted with one worker, the relay adopts the shard the second worker left and delivers it', async () => {
    const spool = await spoolDir();
    const upstreamPort = await freePort();
    const config = relayConfig(spool, upstreamPort, { workers: 2, drainTimeout: '1s' });
    const two = await start(config);
    const acked = await submitMany(two.ports.smtp, 40, 'o');
    assert.equal(acked.length, 40);
    assert.ok((await journalFiles(join(spool, 'shard-1'))) > 0, 'worker 1 holds part of the queue');
    two.proc.kill('SIGTERM');
    assert.equal(await exited(two), 0);

    const one = await start({ ...config, workers: 1 });
    assert.equal(await queued(one), 40, 'the single process holds both shards');
    assert.ok(one.logs.some((l) => l.includes('"spool shard adopted"') && l.includes('"shard":1')));
    const upstream = await sink(upstreamPort);
    await waitFor(async () => (await delivered(upstream)).size === 40, 30_000, 'every message delivered');
    assert.deepEqual([...(await delivered(upstream)).keys()].sort(), [...acked].sort());
  });

  test('the one-shot evacuation of a crashed relay with workers hands off every shard', async () => {
    const upstream = await sink();
    const dir = await tempDir('evacuate');
    cleanups.push(() => removeDir(dir));
    const secretFile = await writeHandoffSecret(dir);
    const ports = { a: await freePort(), b: await freePort() };
    const peers = [`127.0.0.1:${ports.a}`, `127.0.0.1:${ports.b}`];
    const crashed = await start(
      relayConfig(await spoolDir(), await freePort(), {
        workers: 2,
        handoff: { host: '127.0.0.1', port: ports.a, secretFile, peers },
      }),
    );
    const peer = await start(
      relayConfig(await spoolDir(), upstream.port, {
        handoff: { host: '127.0.0.1', port: ports.b, secretFile, peers },
      }),
    );
    const acked = await submitMany(crashed.ports.smtp, 40, 'e');
    assert.equal(acked.length, 40);
    assert.ok(
      (await journalFiles(join(crashed.spoolDir, 'shard-1'))) > 0,
      'worker 1 holds part of the queue',
    );
    // The node is lost: every process of the relay dies at once, nothing is drained.
    for (const pid of workerPids(crashed).values()) process.kill(pid, 'SIGKILL');
    crashed.proc.kill('SIGKILL');
    await exited(crashed);
    const evacuation = spawn(
      process.execPath,
      [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', crashed.configPath, '--evacuate'],
      { stdio: 'ignore' },
    );
    const code = await new Promise<number | null>((r) => evacuation.once('exit', r));
    assert.equal(code, 0, 'the evacuation emptied every shard');
    await waitFor(async () => (await delivered(upstream)).size === 40, 30_000, 'the peer to deliver all 40');
    assert.deepEqual([...(await delivered(upstream)).keys()].sort(), [...acked].sort());
    assert.equal(
      await peer.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' }),
      40,
    );
  });

  test('a suppression added through the API is refused by every worker', async () => {
    const relay = await start(relayConfig(await spoolDir(), await freePort(), { workers: 2 }));
    const added = await relay.http('/api/suppressions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ address: 'gone@example.org', reason: 'manual' }),
    });
    assert.equal(added.status, 201);
    // One connection each: the primary hands them to the workers in turn.
    const sessions = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        sendMessage(relay.ports.smtp, {
          from: 'a@example.com',
          to: ['gone@example.org'],
          raw: rawMessage(`s${i}`),
        }),
      ),
    );
    for (const s of sessions) assert.match(String(s.response), /550/);
    assert.equal(
      await relay.metric('mailfleet_relay_suppression_entries'),
      1,
      'each worker holds the one entry',
    );
  });

  test('two workers enforce a rate limit once between them, not once each', async () => {
    const upstream = await sink();
    const relay = await start(
      relayConfig(await spoolDir(), upstream.port, {
        workers: 2,
        // 10 at once, then one every 6 s: each worker holds half (burst 5, one every 12 s).
        rateLimits: [
          {
            name: 'org',
            match: { recipientDomains: ['example.org'] },
            rate: { messages: 10, per: 'minute' },
            burst: 10,
          },
        ],
      }),
    );
    const acked = await submitMany(relay.ports.smtp, 30, 'r');
    assert.equal(acked.length, 30);
    await waitFor(async () => (await delivered(upstream)).size >= 10, 15_000, 'the burst to be delivered');
    // With each worker enforcing the whole limit, 20 would go at once.
    await new Promise((r) => setTimeout(r, 3000));
    // Every transaction the upstream saw, complete or still being written.
    const got = (await upstream.messages()).length;
    assert.ok(got <= 11, `${got} delivered within the first seconds, the burst of 10 plus at most one`);
    assert.ok((await relay.metric('mailfleet_relay_rate_limit_deferrals_total')) > 0);
  });

  test('a reload that lowers a limit below the worker count retires a worker: the limit holds once, its shard is adopted and delivered, and it comes back when the limit is raised', async () => {
    const spool = await spoolDir();
    // Nothing listens upstream yet: the accepted mail stays queued in both shards.
    const upstreamPort = await freePort();
    const config = relayConfig(spool, upstreamPort, { workers: 2 });
    const relay = await start(config);
    const acked = await submitMany(relay.ports.smtp, 30, 'l');
    assert.equal(acked.length, 30);
    assert.ok((await journalFiles(join(spool, 'shard-1'))) > 0, 'worker 1 holds part of the queue');
    const firstPids = workerPids(relay);

    await writeConfig(relay.configPath, { ...config, limits: { maxConnections: 1 } });
    await waitFor(
      () => logged(relay, '"retired workers adopted"') === 1,
      30_000,
      'worker 1 retired, its shard adopted',
    );
    assert.equal(logged(relay, '"worker retired"'), 1);
    assert.equal(await queued(relay), 30, 'worker 0 holds the whole queue');
    await waitFor(
      async () => (await fetch(`${relay.base}/readyz`)).status === 200,
      10_000,
      'ready with one worker',
    );

    // One session at a time for the relay: each worker keeping one would let a second in.
    const held = await greeting(relay.ports.smtp);
    assert.match(held.line, /^220/);
    for (let i = 0; i < 4; i++) {
      const other = await greeting(relay.ports.smtp);
      other.socket.destroy();
      assert.match(other.line, /^421/, `session ${i + 2} while one is open`);
    }
    held.socket.destroy();

    const upstream = await sink(upstreamPort);
    await waitFor(async () => (await delivered(upstream)).size === 30, 30_000, 'every message delivered');
    assert.deepEqual([...(await delivered(upstream)).keys()].sort(), [...acked].sort());

    await writeConfig(relay.configPath, config);
    await waitFor(
      () => workerPids(relay).get(1) !== firstPids.get(1),
      30_000,
      'worker 1 forked again once the limit allows two',
    );
    await waitFor(async () => (await fetch(`${relay.base}/readyz`)).status === 200, 10_000, 'ready with two');
    const second = await greeting(relay.ports.smtp);
    const third = await greeting(relay.ports.smtp);
    second.socket.destroy();
    third.socket.destroy();
    assert.match(third.line, /^220/, 'two sessions at once again');
    const more = await submitMany(relay.ports.smtp, 10, 'm');
    assert.equal(more.length, 10);
    await waitFor(async () => (await delivered(upstream)).size === 40, 30_000, 'the later mail delivered');
  });

  test('a worker that was down while a suppression was added refuses the address once it is back', async () => {
    // The suppression must reach the primary while worker 1 is down: a restart 5 s after its exit
    // (500 ms by default) leaves the test that long to add it, however loaded the machine.
    const relay = await start(relayConfig(await spoolDir(), await freePort(), { workers: 2 }), {
      MAILFLEET_WORKER_RESTART_DELAY_MS: '5000',
    });
    const before = workerPids(relay);
    process.kill(before.get(1)!, 'SIGKILL');
    await waitFor(
      () => logged(relay, '"worker exited, restarting it"') === 1,
      10_000,
      'the primary to see it gone',
    );
    const added = await relay.http('/api/suppressions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ address: 'gone@example.org', reason: 'manual' }),
    });
    assert.equal(added.status, 201);
    assert.equal(workerPids(relay).get(1), before.get(1), 'added while worker 1 was down');
    await waitFor(() => workerPids(relay).get(1) !== before.get(1), 15_000, 'worker 1 restarted');
    await waitFor(async () => (await fetch(`${relay.base}/readyz`)).status === 200, 15_000, 'ready again');
    await waitFor(
      () => logged(relay, '"worker sent the suppression changes it missed"') === 1,
      5000,
      'the replay',
    );
    // One connection each: the primary hands them to the workers in turn.
    const sessions = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        sendMessage(relay.ports.smtp, {
          from: 'a@example.com',
          to: ['gone@example.org'],
          raw: rawMessage(`b${i}`),
        }),
      ),
    );
    for (const s of sessions) assert.match(String(s.response), /550/);
  });
});
