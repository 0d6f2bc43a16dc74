// Fairness for pool-wide connection leases through a real redis-server. First the store's Lua
// script answers every case of the fairness table as the pure decision does. Then three real
// relays share a pool cap of 4 connections (share 1 each): relay a gets a backlog of 300 and takes
// all 4; b and c get 15 each a moment later. Without fairness a, whose release and next request
// reach the store back to back, takes every freed lease again and b and c wait for a's backlog to
// drain; with it, a yields the room above its fair share (2) while b and c wait, and b and c
// deliver theirs while most of a's backlog is still queued. The cap holds throughout.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { removeDir, waitFor, type RelayProcess } from '../helpers/relay/peers.ts';
import { submitTo } from '../helpers/relay/rate.ts';
import { Registry } from 'prom-client';
import { LEASE_TTL_MS, SharedConnectionLeases } from '../../relay/src/shared-state/connection-leases.ts';
import {
  LEASE_REPLY,
  LEASE_SCRIPT,
  WAITER_TTL_MS,
  type FairLeaseDecision,
} from '../../relay/src/shared-state/lease-fairness.ts';
import { fairLeaseDecisionCases } from '../helpers/lease-fairness-cases.ts';
import { startCountingUpstream, type CountingUpstream } from '../helpers/relay/counting-upstream.ts';
import { startRedisWithClient, startRelaysOnStore, type RedisServer } from '../helpers/redis.ts';

const POOL_CONNECTIONS = 4;
const BACKLOG_A = 300;
const BACKLOG_BC = 15;

describe('fair pool-wide connection leases (redis-server)', () => {
  let upstream: CountingUpstream;
  let redis: RedisServer;
  let store: Redis;
  let relays: RelayProcess[] = [];
  const dirs: string[] = [];

  before(async () => {
    upstream = await startCountingUpstream();
    ({ redis, store } = await startRedisWithClient(dirs));
  });
  after(async () => {
    store?.disconnect();
    for (const relay of relays) await relay.stop();
    await upstream?.stop();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  /** Runs the script for `asker` over lease and waiter sets, one pair per cap. */
  const runScript = (asker: string, sets: { leases: string; waiting: string; cap: number }[]) =>
    store.eval(
      LEASE_SCRIPT,
      sets.length * 2,
      ...sets.map((s) => s.leases),
      ...sets.map((s) => s.waiting),
      `${asker}:new`,
      LEASE_TTL_MS,
      asker,
      WAITER_TTL_MS,
      ...sets.map((s) => s.cap),
    ) as Promise<number>;
  /** Numbers the sets each case writes. */
  let sets = 0;
  /** Writes a case's leases and waiters (unexpired) into fresh sets. */
  const seed = async (held: Record<string, number>, waiting: readonly string[]) => {
    const n = ++sets;
    const leases = `fair:${n}:leases`;
    const waitingKey = `fair:${n}:waiting`;
    const later = Date.now() + 60_000;
    for (const [who, count] of Object.entries(held))
      for (let k = 0; k < count; k++) await store.zadd(leases, later, `${who}:${k}`);
    for (const who of waiting) await store.zadd(waitingKey, later, who);
    return { leases, waiting: waitingKey };
  };

  test('the store’s script decides every case of the table as the pure decision does', async (t) => {
    for (const c of fairLeaseDecisionCases)
      await t.test(c.name, async () => {
        const sets = await seed(c.held, c.waiting);
        const reply = await runScript(c.asker, [{ ...sets, cap: c.cap }]);
        assert.equal(reply, LEASE_REPLY[c.want]);
        const added = (await store.zscore(sets.leases, `${c.asker}:new`)) !== null;
        const waits = (await store.zscore(sets.waiting, c.asker)) !== null;
        // Granted: the lease is added and the asker waits no more; full: it waits; yield: unchanged.
        assert.equal(added, c.want === 'grant');
        assert.equal(waits, c.want === 'full' || (c.want === 'yield' && c.waiting.includes(c.asker)));
      });
  });

  test('a waiter whose entry lapsed (it stopped asking) holds nobody back', async () => {
    const sets = await seed({ a: 3 }, []);
    await store.zadd(sets.waiting, Date.now() - 1, 'b');
    assert.equal(await runScript('a', [{ ...sets, cap: 4 }]), LEASE_REPLY.grant);
    assert.equal(await store.zscore(sets.waiting, 'b'), null);
  });

  test('a relay that waits no more withdraws: a peer at its fair share gets the room at once, not when the entry lapses', async () => {
    // Two relays' leases on the real store (the relay's own SharedConnectionLeases), a cap of 2.
    const leases = (instance: string) =>
      new SharedConnectionLeases({
        redis: store,
        keyPrefix: 'withdraw:',
        instance,
        connected: () => true,
        registry: new Registry(),
      });
    const limits = [{ id: 'l', limit: 'conns', destination: 'w.test', poolMax: 2, share: 1 }];
    const x = leases('x').gate(limits);
    const y = leases('y').gate(limits);
    const [first, second] = [await x.acquire(), await x.acquire()];
    assert.ok(first && second, 'x takes the whole cap');
    assert.equal(await y.acquire(), undefined, 'y finds no room and waits');
    second.release();
    // x holds its fair share (1 of 2) while y waits: the room is left to y.
    assert.equal(await x.acquire(), undefined, 'x yields to the waiting y');
    // y's messages went over other connections: it waits no more and says so.
    y.withdraw();
    await waitFor(
      async () => (await store.zcard('withdraw:connections:conns:w.test:waiting')) === 0,
      2000,
      'y withdrawn',
    );
    const again = await x.acquire();
    assert.ok(again, 'x gets the room at once');
    first.release();
    again.release();
  });

  test('a connection under two caps: granted only if both grant, registered as waiter where full', async (t) => {
    const cases: {
      name: string;
      caps: { cap: number; held: Record<string, number>; waiting: string[] }[];
      want: FairLeaseDecision;
    }[] = [
      {
        name: 'both have room',
        caps: [
          { cap: 2, held: { a: 1 }, waiting: [] },
          { cap: 4, held: {}, waiting: [] },
        ],
        want: 'grant',
      },
      {
        name: 'the second is full',
        caps: [
          { cap: 2, held: {}, waiting: [] },
          { cap: 1, held: { b: 1 }, waiting: [] },
        ],
        want: 'full',
      },
      {
        name: 'the first yields to a waiter, the second has room',
        caps: [
          { cap: 2, held: { a: 1 }, waiting: ['b', 'c'] },
          { cap: 4, held: {}, waiting: [] },
        ],
        want: 'yield',
      },
    ];
    for (const c of cases)
      await t.test(c.name, async () => {
        const written = [];
        for (const cap of c.caps) written.push({ ...(await seed(cap.held, cap.waiting)), cap: cap.cap });
        assert.equal(await runScript('a', written), LEASE_REPLY[c.want]);
        for (const [i, s] of written.entries()) {
          assert.equal((await store.zscore(s.leases, 'a:new')) !== null, c.want === 'grant');
          const full = Object.values(c.caps[i]!.held).reduce((x, y) => x + y, 0) >= s.cap;
          assert.equal((await store.zscore(s.waiting, 'a')) !== null, full);
        }
      });
  });

  test('three relays, one with a large backlog: the other two still get connections', async (t) => {
    const rateLimits = [
      {
        name: 'conns',
        match: { recipientDomains: ['conn.test'] },
        maxConnections: 1,
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
    const [a, b, c] = relays as [RelayProcess, RelayProcess, RelayProcess];
    const delivered = (tag: string, count: number) =>
      Array.from({ length: count }, (_, i) => `${tag}-${i}@conn.test`).filter((r) =>
        upstream.delivered.has(r),
      ).length;
    const decisions = (relay: RelayProcess, decision: string) =>
      relay.metric('mailfleet_relay_shared_connection_lease_decisions_total', {
        rate_limit: 'conns',
        decision,
      });

    upstream.delayMs = 100;
    const sendA = submitTo(a.ports.smtp, BACKLOG_A, (i) => `a-${i}@conn.test`);
    await waitFor(() => upstream.open === POOL_CONNECTIONS, 30_000, 'relay a holds every connection');
    await Promise.all([
      submitTo(b.ports.smtp, BACKLOG_BC, (i) => `b-${i}@conn.test`),
      submitTo(c.ports.smtp, BACKLOG_BC, (i) => `c-${i}@conn.test`),
    ]);
    await sendA;
    await waitFor(
      () => delivered('b', BACKLOG_BC) === BACKLOG_BC && delivered('c', BACKLOG_BC) === BACKLOG_BC,
      120_000,
      'b and c deliver theirs',
    );
    const aWhenDone = delivered('a', BACKLOG_A);
    const granted = await Promise.all(relays.map((r) => decisions(r, 'granted')));
    const yielded = await decisions(a, 'yielded');
    t.diagnostic(
      `when b and c had delivered ${BACKLOG_BC} each, a had delivered ${aWhenDone} of ${BACKLOG_A}; ` +
        `leases granted a/b/c ${granted.join('/')}, a yielded ${yielded}; peak ${upstream.peak} of ${POOL_CONNECTIONS}`,
    );
    // Without fairness b and c get room only as a's backlog drains (a delivers ~all 300 first).
    assert.ok(aWhenDone <= BACKLOG_A / 2, `a delivered ${aWhenDone} of ${BACKLOG_A} before b and c finished`);
    assert.ok(yielded > 0, 'a yielded room to the waiting relays');
    assert.ok(upstream.peak <= POOL_CONNECTIONS, `peak ${upstream.peak}`);
    await waitFor(() => delivered('a', BACKLOG_A) === BACKLOG_A, 120_000, 'a delivers its backlog');
  });
});
