// A relay's connection lease decided while an answer is late, against a real redis-server. Late
// because the relay was: its event loop blocked past the 1 s decision timeout while the store
// answered at once (a relay starved of CPU on a busy node). Late because the store was:
// redis-server frozen with SIGSTOP past the timeout. A busy relay must still go by the store's
// answer (taking its lateness for the store's would open on its share beyond the pool's cap: the
// fifth connection against a cap of 4 seen once under load); a lease the store adds after the
// relay decided without it must not hold room nobody uses.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { removeDir, tempDir } from '../helpers/relay/peers.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import type { ConnectionLease } from '../../relay/src/delivery/smtp-options.ts';
import { LEASE_TTL_MS, SharedConnectionLeases } from '../../relay/src/shared-state/connection-leases.ts';

const CAP = 4;
const PREFIX = 'late:';
/** Past the relay's 1 s decision timeout. */
const LATE_MS = 1500;

/** Blocks this thread, as a relay starved of CPU or in a long GC pause is. */
const blockEventLoop = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

interface LateCase {
  name: string;
  /** Leases other relays hold. */
  others: number;
  /** Leases this relay holds before it asks (its share is 1). */
  own: number;
  late: 'relay' | 'store';
  decision: 'granted' | 'full' | 'fallback';
  leased: boolean;
  /** This relay's leases in the store once the late answer is in. */
  ownInStore: number;
}

const cases: LateCase[] = [
  {
    name: 'relay busy, store with room: granted by the store',
    others: 1,
    own: 0,
    late: 'relay',
    decision: 'granted',
    leased: true,
    ownInStore: 1,
  },
  {
    name: 'relay busy, store full: waits, not a fallback beyond the cap',
    others: CAP,
    own: 0,
    late: 'relay',
    decision: 'full',
    leased: false,
    ownInStore: 0,
  },
  {
    name: 'store late, share unused: opens on its share; the lease added late stays, its connection holds it',
    others: 1,
    own: 0,
    late: 'store',
    decision: 'fallback',
    leased: true,
    ownInStore: 1,
  },
  {
    name: 'store late, share used: waits; the lease the store added late is taken out again',
    others: 1,
    own: 1,
    late: 'store',
    decision: 'full',
    leased: false,
    ownInStore: 1,
  },
];

describe('connection leases with late answers (redis-server)', () => {
  let redis: RedisServer;
  let client: Redis;
  let inspect: Redis;
  const dirs: string[] = [];
  const held: ConnectionLease[] = [];

  before(async () => {
    const dir = await tempDir('redis');
    dirs.push(dir);
    redis = await startRedis(dir);
    // As the relay's store connection: no offline queue, a command fails rather than waits.
    const options = {
      password: redis.password,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: true,
    };
    client = new Redis(redis.url, options);
    inspect = new Redis(redis.url, options);
    client.on('error', () => undefined);
    inspect.on('error', () => undefined);
    await Promise.all([client.connect(), inspect.connect()]);
  });
  after(async () => {
    redis?.resume();
    for (const lease of held) lease.release();
    client?.disconnect();
    inspect?.disconnect();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  cases.forEach((c, i) =>
    test(c.name, async () => {
      const limit = `case${i}`;
      const key = `${PREFIX}connections:${limit}:d`;
      const instance = `relay${i}`;
      const expiry = Date.now() + LEASE_TTL_MS;
      for (let k = 0; k < c.others; k++) await inspect.zadd(key, expiry, `other:${k}`);
      const registry = new Registry();
      const leases = new SharedConnectionLeases({
        redis: client,
        keyPrefix: PREFIX,
        instance,
        connected: () => true,
        registry,
      });
      const gate = leases.gate([{ id: `${limit}\0d`, limit, destination: 'd', poolMax: CAP, share: 1 }]);
      for (let k = 0; k < c.own; k++) {
        const lease = await gate.acquire();
        assert.ok(lease, 'the relay’s own lease before the late one');
        held.push(lease);
      }
      const decided = async () =>
        (
          await registry.getSingleMetric('mailfleet_relay_shared_connection_lease_decisions_total')!.get()
        ).values.find((v) => v.labels.decision === c.decision)?.value ?? 0;
      const before = await decided();
      if (c.late === 'store') redis.pause();
      const asked = gate.acquire();
      if (c.late === 'relay') blockEventLoop(LATE_MS);
      else setTimeout(() => redis.resume(), LATE_MS);
      const lease = await asked;
      if (lease) held.push(lease);
      assert.equal(lease !== undefined, c.leased);
      assert.equal((await decided()) - before, 1, `one more ${c.decision} decision`);
      // By now the late answer is in, and a removal it made the relay send went before this ping.
      await sleep(LATE_MS);
      await client.ping();
      const members = await inspect.zrange(key, 0, -1);
      assert.equal(members.filter((m) => m.startsWith(`${instance}:`)).length, c.ownInStore);
      assert.ok(
        members.length <= CAP || c.decision === 'fallback',
        `${members.length} leases against a cap of ${CAP}`,
      );
    }),
  );
});
