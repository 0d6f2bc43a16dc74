// Handoff between real relay processes: a draining relay transfers its queue (spool records with
// recipient states, attempts, next attempt, arrival time) to a ready peer of its pool over the
// internal port, signed with the pool secret; the peer fsyncs before acknowledging, and delivers
// when the destination recovers. Every test keeps a ledger: acknowledged, handed off, delivered,
// duplicates, lost = 0. MAILFLEET_HANDOFF_MESSAGES sets the queue size (default 1200).
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  deliveredIds,
  freePort,
  ledger,
  readAccounting,
  relayConfig,
  removeDir,
  startRelay,
  startScripted,
  smtpTransaction,
  submitMany,
  tempDir,
  waitFor,
  writeHandoffSecret,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';
import { allDeferred, exited, killMidTransfer } from '../helpers/relay/handoff.ts';

const N = Number(process.env.MAILFLEET_HANDOFF_MESSAGES) || 1200;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Pool {
  upstream: ScriptedUpstream;
  secretFile: string;
  ports: { a: number; b: number };
  spools: { a: string; b: string };
  config(which: 'a' | 'b', over?: Record<string, unknown>): Record<string, unknown>;
}

/** Two relays of one pool, both listing both as peers (each must skip itself), one deferring upstream. */
async function pool(): Promise<Pool> {
  // The destination advertises DSN, so what a relay passes on of RFC 3461 is seen there.
  const upstream = await startScripted({ hideDSN: false });
  upstream.onRcpt = () => ({ code: 451, message: '4.4.1 destination down' });
  const dir = await tempDir('handoff');
  const spools = { a: await tempDir('spoolA'), b: await tempDir('spoolB') };
  cleanups.push(
    () => upstream.stop(),
    () => removeDir(dir),
    () => removeDir(spools.a),
    () => removeDir(spools.b),
  );
  const secretFile = await writeHandoffSecret(dir);
  const ports = { a: await freePort(), b: await freePort() };
  const peers = [`127.0.0.1:${ports.a}`, `127.0.0.1:${ports.b}`];
  return {
    upstream,
    secretFile,
    ports,
    spools,
    config: (which, over = {}) =>
      relayConfig(spools[which], upstream.port, {
        retry: { firstRetry: '3s', maxBackoff: '5s', maxQueueLifetime: '1h' },
        handoff: { host: '127.0.0.1', port: ports[which], secretFile, peers },
        drainTimeout: '60s',
        ...over,
      }),
  };
}

async function start(config: Record<string, unknown>, path?: string): Promise<RelayProcess> {
  const relay = await startRelay(config, path);
  cleanups.push(() => relay.stop('SIGKILL'));
  return relay;
}

interface Listed {
  id: string;
  receivedAt: string;
  jobs: { attempts: number; state: string }[];
}

async function queueListing(relay: RelayProcess): Promise<Map<string, Listed>> {
  const body = (await (await relay.http('/api/messages?limit=10000')).json()) as { messages: Listed[] };
  return new Map(body.messages.map((m) => [m.id, m]));
}

describe('relay handoff between pool peers', () => {
  test(`a draining relay hands ${N} deferred messages to its peer, which delivers them all when the destination recovers`, async () => {
    const p = await pool();
    const b = await start(p.config('b'));
    const a = await start(p.config('a'));
    const acknowledged = await submitMany(a.ports.smtp, N, 'h');
    assert.equal(acknowledged.length, N);
    await allDeferred(a, N);
    const onA = await queueListing(a);

    const started = Date.now();
    const aExit = exited(a);
    a.proc.kill('SIGTERM');
    assert.equal(await aExit, 0);
    const handoffMs = Date.now() - started;
    const handedOff = (await readAccounting(a.spoolDir)).filter((l) => l.outcome === 'handedoff');
    assert.equal(handedOff.length, N, 'every recipient accounted as handed off on A');
    assert.deepEqual(
      (await readdir(join(a.spoolDir, 'queue'))).filter((n) => n.endsWith('.msg')),
      [],
      'nothing left in A',
    );
    // B holds the same messages: same queue ids, arrival times and attempt counts as on A.
    const onB = await queueListing(b);
    assert.equal(onB.size, N);
    for (const [id, m] of onB) {
      const before = onA.get(id);
      assert.ok(before, `${id} kept its queue id`);
      assert.equal(m.receivedAt, before.receivedAt, 'arrival time kept (expiry counts from it)');
      // A may have retried between the listing and the drain: at least as many, never reset.
      assert.ok((m.jobs[0]?.attempts ?? 0) >= (before.jobs[0]?.attempts ?? 1), 'attempt count kept');
    }
    assert.equal(await b.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' }), N);

    p.upstream.onRcpt = () => undefined;
    await waitFor(() => deliveredIds(p.upstream.received).size === N, 120_000, 'B to deliver all');
    const delivered = deliveredIds(p.upstream.received);
    const lost = acknowledged.filter((id) => !delivered.has(id));
    const duplicates = [...delivered.values()].reduce((s, n) => s + n - 1, 0);
    ledger('drain A -> B', {
      acknowledged: acknowledged.length,
      handedOff: handedOff.length,
      delivered: delivered.size,
      duplicates,
      lost: lost.length,
      handoffMs,
    });
    assert.deepEqual(lost, []);
    assert.equal(duplicates, 0);
    // Attempts continued from A's count (expiry and backoff do not restart on the peer). B writes
    // an accounting line once the upstream's 250 reaches it, after the upstream holds the message.
    const deliveredLines = async () =>
      (await readAccounting(b.spoolDir)).filter((l) => l.outcome === 'delivered');
    await waitFor(async () => (await deliveredLines()).length >= N, 10000, "B's accounting lines");
    const bDelivered = await deliveredLines();
    assert.equal(bDelivered.length, N);
    assert.ok(bDelivered.every((l) => (l.attempts as number) >= 2));
  });

  test('a relay killed with -9 during its handoff loses nothing: restarted, it hands off the rest; the peer counts the duplicates', async () => {
    const p = await pool();
    const b = await start(p.config('b'));
    const aConfig = p.config('a');
    const a = await start(aConfig);
    const acknowledged = await submitMany(a.ports.smtp, N, 'k');
    assert.equal(acknowledged.length, N);
    await allDeferred(a, N);

    a.proc.kill('SIGTERM');
    const sentBeforeKill = await killMidTransfer(a, b);
    assert.ok(sentBeforeKill < N, `killed mid-handoff (${sentBeforeKill} of ${N} stored on B)`);

    const again = await start(aConfig, a.configPath);
    const recovered = again.logs.map((l) => /"spool recovered".*"messages":(\d+)/.exec(l)?.[1]).find(Boolean);
    assert.ok(Number(recovered) > 0, 'A still had mail after the kill');
    const againExit = exited(again);
    again.proc.kill('SIGTERM');
    assert.equal(await againExit, 0);

    p.upstream.onRcpt = () => undefined;
    await waitFor(() => deliveredIds(p.upstream.received).size === N, 120_000, 'B to deliver all');
    // Let any extra copy surface before counting.
    await new Promise((r) => setTimeout(r, 6000));
    const delivered = deliveredIds(p.upstream.received);
    const lost = acknowledged.filter((id) => !delivered.has(id));
    const duplicateDeliveries = [...delivered.values()].reduce((s, n) => s + n - 1, 0);
    const duplicatesDetected = await b.metric('mailfleet_relay_handoff_received_messages_total', {
      result: 'duplicate',
    });
    ledger('kill -9 during handoff', {
      acknowledged: acknowledged.length,
      storedOnBBeforeKill: sentBeforeKill,
      recoveredByA: Number(recovered),
      duplicatesDetectedByB: duplicatesDetected,
      delivered: delivered.size,
      duplicateDeliveries,
      lost: lost.length,
    });
    assert.deepEqual(lost, []);
    // A duplicate that B recognised is acknowledged, not stored twice: nothing is delivered twice.
    assert.equal(duplicateDeliveries, 0);
  });

  test('DSN parameters (RET, ENVID, NOTIFY, ORCPT) travel with a handed-off message to the next hop', async () => {
    const p = await pool();
    const b = await start(p.config('b'));
    const a = await start(p.config('a'));
    const replies = await smtpTransaction(
      a.ports.smtp,
      '<a@example.com> RET=FULL ENVID=handoff+2Benv',
      [
        '<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@example.org',
        '<c@example.org> NOTIFY=NEVER',
      ],
      'From: a@example.com\r\nSubject: dsn\r\nMessage-ID: <dsn-handoff@example.com>\r\n\r\nbody\r\n',
    );
    assert.match(replies.at(-1) ?? '', /^250 /);
    await allDeferred(a, 1);
    const aExit = exited(a);
    a.proc.kill('SIGTERM');
    assert.equal(await aExit, 0);
    assert.equal(await b.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' }), 1);
    p.upstream.onRcpt = () => undefined;
    await waitFor(() => deliveredIds(p.upstream.received).has('dsn-handoff'), 30_000, 'B to deliver it');
    const got = p.upstream.received.find((m) => m.raw.includes('dsn-handoff'))!;
    assert.deepEqual(got.dsn, { ret: 'FULL', envid: 'handoff+env' });
    assert.deepEqual(got.rcptDsn, [
      { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;orig@example.org' },
      { notify: ['NEVER'] },
    ]);
  });

  test('the internal port refuses requests not signed with the pool secret', async () => {
    const p = await pool();
    const b = await start(p.config('b'));
    const res = await fetch(`http://127.0.0.1:${b.ports.handoff}/handoff/v1/messages`, {
      method: 'POST',
      body: '3\nabc',
    });
    assert.equal(res.status, 401);
    const hello = await fetch(`http://127.0.0.1:${b.ports.handoff}/handoff/v1/hello`);
    assert.equal(hello.status, 401);
  });
});
