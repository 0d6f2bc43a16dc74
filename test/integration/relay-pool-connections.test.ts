// Pool-wide connection caps through a real redis-server: three real relays under a RateLimit of 4
// connections for the pool (each relay's share: 1) deliver to one upstream that counts the SMTP
// sessions open at once. The pool never has more than 4 open and uses all 4 (the shares alone
// would open 3); a relay killed (SIGKILL) holding every lease leaves them in the store until they
// lapse, and the other relays then use the room; with the store frozen (slower than the decision
// timeout) or stopped, each relay opens its share, counted as fallbacks, and with the store
// answering again the leases carry the cap again. Every message is delivered.
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { removeDir, waitFor, type RelayProcess } from '../helpers/relay/peers.ts';
import { submitTo } from '../helpers/relay/rate.ts';
import { LEASE_TTL_MS } from '../../relay/src/shared-state/connection-leases.ts';
import { startCountingUpstream, type CountingUpstream } from '../helpers/relay/counting-upstream.ts';
import { startRedisWithClient, startRelaysOnStore, waitStore, type RedisServer } from '../helpers/redis.ts';

const POOL_CONNECTIONS = 4;
const SHARE = Math.floor(POOL_CONNECTIONS / 3);
const KEY = 'mailfleet:test/outbound:connections:conns:conn.test';

describe('pool-wide connection caps (redis-server, 3 relays)', () => {
  let upstream: CountingUpstream;
  let redis: RedisServer;
  let store: Redis;
  let relays: RelayProcess[] = [];
  const dirs: string[] = [];

  const send = (relay: RelayProcess, tag: string, count: number) =>
    submitTo(relay.ports.smtp, count, (i) => `${tag}-${i}@conn.test`);
  /** Whether the upstream has every message of these tags (`count` each). */
  const allDelivered = (tags: readonly string[], count: number) =>
    tags.every((tag) =>
      Array.from({ length: count }, (_, i) => `${tag}-${i}@conn.test`).every((r) =>
        upstream.delivered.has(r),
      ),
    );
  const decisions = async (list: readonly RelayProcess[], decision: string) => {
    let n = 0;
    for (const relay of list)
      n += await relay.metric('mailfleet_relay_shared_connection_lease_decisions_total', {
        rate_limit: 'conns',
        decision,
      });
    return n;
  };

  /** Runs `wait`; when it fails, the relays' lease and queue metrics, their last log lines and the store's leases go to the test's diagnostics. */
  const explainFailure = async (t: TestContext, list: RelayProcess[], wait: () => Promise<void>) => {
    try {
      await wait();
    } catch (err) {
      for (const relay of list) {
        const text = await (await relay.http('/metrics')).text();
        const lines = text
          .split('\n')
          .filter((l) => /lease|queue_jobs|shared_state_up/.test(l) && !l.startsWith('#'));
        t.diagnostic([...lines, ...relay.logs.slice(-20)].join('\n'));
      }
      t.diagnostic(
        `open at the upstream ${upstream.open}; leases ${JSON.stringify(await store.zrange(KEY, 0, -1, 'WITHSCORES'))}`,
      );
      throw err;
    }
  };

  before(async () => {
    upstream = await startCountingUpstream();
    ({ redis, store } = await startRedisWithClient(dirs));
    // What the operator renders for a Pool-scoped limit of 4 connections over 3 ready relays,
    // with connections replaced every 5 messages so leases are given back and taken again.
    const rateLimits = [
      {
        name: 'conns',
        match: { recipientDomains: ['conn.test'] },
        maxConnections: SHARE,
        maxMessagesPerConnection: 5,
        pool: { maxConnections: POOL_CONNECTIONS },
      },
    ];
    relays = await startRelaysOnStore({
      redis,
      upstreamPort: upstream.port,
      count: 3,
      dirs,
      config: { rateLimits },
    });
  });
  after(async () => {
    redis?.resume();
    store?.disconnect();
    for (const relay of relays) await relay.stop();
    await upstream?.stop();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  test('three relays with a backlog: at most the pool cap open at once, and all of it used', async (t) => {
    const [a, b, c] = relays as [RelayProcess, RelayProcess, RelayProcess];
    await Promise.all([send(a, 'a', 40), send(b, 'b', 40), send(c, 'c', 40)]);
    await explainFailure(t, relays, () =>
      waitFor(() => allDelivered(['a', 'b', 'c'], 40), 60_000, 'all 120 delivered'),
    );
    const fallbacks = await decisions(relays, 'fallback');
    t.diagnostic(
      `peak ${upstream.peak} sessions open at once, pool cap ${POOL_CONNECTIONS}, ${fallbacks} fallbacks`,
    );
    // A fallback (the store slower than 1 s) would let a relay open its share beyond the cap.
    assert.equal(fallbacks, 0);
    assert.ok(upstream.peak <= POOL_CONNECTIONS, `peak ${upstream.peak}`);
    // The shares alone would never open more than 3.
    assert.equal(upstream.peak, POOL_CONNECTIONS);
    assert.ok((await decisions(relays, 'granted')) > 0);
    // Every connection closed gave its lease back.
    await waitFor(async () => (await store.zcard(KEY)) === 0, 10_000, 'leases released');
  });

  test('a relay killed holding every lease: its leases lapse, then the others use the room', async (t) => {
    const [a, b, c] = relays as [RelayProcess, RelayProcess, RelayProcess];
    upstream.delayMs = 2000;
    upstream.peak = 0;
    void send(a, 'killed', 30).catch(() => undefined);
    await waitFor(() => upstream.open === POOL_CONNECTIONS, 20_000, 'relay a holds every connection');
    const held = await store.zrange(KEY, 0, -1);
    assert.equal(held.length, POOL_CONNECTIONS);
    const instanceOfA = held[0]!.split(':')[0]!;
    assert.ok(
      held.every((m) => m.startsWith(`${instanceOfA}:`)),
      'all four are relay a’s',
    );
    a.proc.kill('SIGKILL');
    // The later phases go on with the two relays alive, whatever this one finds.
    relays = [b, c];
    // Each lease lapses LEASE_TTL_MS after it was taken: a took its four one after another.
    const expiries = (await store.zrange(KEY, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
    t.diagnostic(`relay a's leases lapse over ${Math.max(...expiries) - Math.min(...expiries)} ms`);
    await waitFor(() => upstream.open === 0, 10_000, 'relay a’s sessions closed');
    upstream.delayMs = 100;
    upstream.peak = 0;
    await Promise.all([send(b, 'b2', 20), send(c, 'c2', 20)]);
    // While all of a's leases are in the store nobody may connect. The peak is read first: a
    // lease granted before that read would have removed one of a's (expired) from the set.
    let checks = 0;
    for (;;) {
      const peak = upstream.peak;
      const ofA = (await store.zrange(KEY, 0, -1)).filter((m) => m.startsWith(`${instanceOfA}:`));
      if (ofA.length < POOL_CONNECTIONS) break;
      assert.equal(peak, 0, 'a connection opened while relay a’s leases filled the pool');
      checks++;
      await sleep(100);
    }
    t.diagnostic(`${checks} checks over ${checks / 10} s: no connection while a's leases held`);
    assert.ok(checks > 0);
    await waitFor(
      async () => !(await store.zrange(KEY, 0, -1)).some((m) => m.startsWith(`${instanceOfA}:`)),
      LEASE_TTL_MS + 10_000,
      'relay a’s leases lapse',
    );
    // The room is judged once a's last lease is gone (b and c may have delivered all of theirs in
    // the room its first lapsed leases left), with fresh mail for both.
    upstream.peak = upstream.open;
    await Promise.all([send(b, 'b3', 20), send(c, 'c3', 20)]);
    await explainFailure(t, [b, c], () =>
      waitFor(() => allDelivered(['b2', 'c2', 'b3', 'c3'], 20), 60_000, 'b and c deliver theirs'),
    );
    const labels = ['granted', 'full', 'yielded', 'fallback'];
    const byLabel = await Promise.all(labels.map(async (l) => `${l} ${await decisions([b, c], l)}`));
    t.diagnostic(
      `after a's leases lapsed: peak ${upstream.peak} of ${POOL_CONNECTIONS}; ${byLabel.join(', ')}`,
    );
    assert.equal(upstream.peak, POOL_CONNECTIONS);
  });

  test('store slower than the decision timeout: shares carry the mail, counted as fallbacks; answering again, leases again', async (t) => {
    const counts = async () => ({
      fallback: await decisions(relays, 'fallback'),
      granted: await decisions(relays, 'granted'),
    });
    await waitFor(() => upstream.open === 0, 10_000, 'earlier connections closed');
    upstream.delayMs = 100;
    upstream.peak = 0;
    const before = await counts();
    // Frozen, redis-server keeps its connections open and answers nothing: every decision waits
    // out the 1 s timeout, as with a store on an overloaded node.
    redis.pause();
    let slow: { fallback: number; granted: number };
    try {
      await Promise.all(relays.map((relay, i) => send(relay, `slow${i}`, 20)));
      await explainFailure(t, relays, () =>
        waitFor(
          () =>
            allDelivered(
              relays.map((_, i) => `slow${i}`),
              20,
            ),
          60_000,
          'delivered on shares',
        ),
      );
      slow = await counts();
    } finally {
      redis.resume();
    }
    t.diagnostic(
      `store frozen: peak ${upstream.peak}, shares ${relays.length} x ${SHARE}, ${slow.fallback - before.fallback} fallbacks`,
    );
    assert.ok(upstream.peak <= relays.length * SHARE, `peak ${upstream.peak}`);
    assert.ok(slow.fallback > before.fallback, 'fallbacks counted');
    assert.equal(slow.granted, before.granted, 'nothing granted by a frozen store');
    // Answering again: the relays lease from the store after their second on the shares.
    await waitFor(() => upstream.open === 0, 10_000, 'connections opened on the shares closed');
    upstream.peak = 0;
    await Promise.all(relays.map((relay, i) => send(relay, `resumed${i}`, 20)));
    await explainFailure(t, relays, () =>
      waitFor(
        () =>
          allDelivered(
            relays.map((_, i) => `resumed${i}`),
            20,
          ),
        60_000,
        'delivered on leases',
      ),
    );
    const resumed = await counts();
    t.diagnostic(`store answering again: peak ${upstream.peak}, ${resumed.granted - slow.granted} granted`);
    assert.ok(resumed.granted > slow.granted, 'leases granted again');
    // More than the shares could open: the store's leases carry the cap again.
    assert.ok(upstream.peak > relays.length * SHARE, `peak ${upstream.peak}`);
    assert.ok(upstream.peak <= POOL_CONNECTIONS, `peak ${upstream.peak}`);
    // Late answers to the frozen decisions left no lease behind.
    await waitFor(async () => (await store.zcard(KEY)) === 0, 10_000, 'leases released');
  });

  test('store stopped: each relay opens its share, counted as fallbacks, and delivers', async (t) => {
    await redis.stop();
    for (const relay of relays) await waitStore(relay, false);
    // Connections leased before the store went down stay open until idle (1 s): count from none.
    await waitFor(() => upstream.open === 0, 10_000, 'earlier connections closed');
    upstream.peak = 0;
    await Promise.all(relays.map((relay, i) => send(relay, `down${i}`, 20)));
    const tags = relays.map((_, i) => `down${i}`);
    await explainFailure(t, relays, () =>
      waitFor(() => allDelivered(tags, 20), 60_000, 'every message delivered'),
    );
    t.diagnostic(`store down: peak ${upstream.peak}, shares ${relays.length} x ${SHARE}`);
    assert.ok(upstream.peak <= relays.length * SHARE, `peak ${upstream.peak}`);
    assert.ok((await decisions(relays, 'fallback')) > 0);
    for (const relay of relays)
      await waitFor(
        async () => (await relay.metric('mailfleet_relay_queue_jobs')) === 0,
        10_000,
        'queue empty',
      );
  });
});
