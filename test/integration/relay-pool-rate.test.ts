// Pool-wide RateLimits through a real redis-server: the store's Lua script decides exactly as the
// pure GCRA function (shaping/gcra.ts) on random cases; three real relays sending unevenly to one
// limited destination hold the pool's rate within 5 % (the static share would let the busiest
// relay send only its third); with the store down each relay falls back to its share, never to
// no limit, and counts it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import {
  relayConfig,
  removeDir,
  startRelay,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';
import { startRedis, waitStore, type RedisServer } from '../helpers/redis.ts';
import { steadyRate, submitTo } from '../helpers/relay/rate.ts';
import { GCRA_SCRIPT } from '../../relay/src/shared-state/rate-limits.ts';
import { gcraDecide, gcraRate } from '../../relay/src/shaping/gcra.ts';

describe('pool-wide rate limits (redis-server, 3 relays)', () => {
  let upstream: ScriptedUpstream;
  let redis: RedisServer;
  const relays: RelayProcess[] = [];
  const dirs: string[] = [];
  /** Arrival times at the upstream by the sending relay's letter (the recipient's local part). */
  const arrivals = new Map<string, number[]>();

  before(async () => {
    upstream = await startScripted();
    upstream.onData = (raw) => {
      const relay = /^To: ([a-z])-/m.exec(raw)?.[1] ?? '';
      arrivals.set(relay, [...(arrivals.get(relay) ?? []), Date.now()]);
      return undefined;
    };
    const redisDir = await tempDir('redis');
    dirs.push(redisDir);
    redis = await startRedis(redisDir);
    for (let i = 0; i < 3; i++) {
      const spool = await tempDir(`spool${i}`);
      dirs.push(spool);
      // What the operator renders for a Pool-scoped 30/s limit over 3 ready relays: each relay's
      // share (10/s) and the pool's numbers.
      const config = relayConfig(spool, upstream.port, {
        sharedState: {
          url: redis.url,
          passwordFile: redis.passwordFile,
          keyPrefix: 'mailfleet:test/outbound:',
        },
        rateLimits: [
          {
            name: 'bulk',
            match: { recipientDomains: ['pool.test'] },
            rate: { messages: 10, per: 'second' },
            burst: 1,
            pool: { rate: { messages: 30, per: 'second' }, burst: 1 },
          },
        ],
      });
      relays.push(await startRelay(config));
    }
    for (const relay of relays) await waitStore(relay, true);
  });
  after(async () => {
    for (const relay of relays) await relay.stop();
    await upstream?.stop();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  test('the Lua script decides as the pure GCRA function on 500 random cases', async () => {
    const client = new Redis(redis.url, { password: redis.password });
    try {
      client.defineCommand('gcra', { lua: GCRA_SCRIPT });
      const gcra = (
        client as unknown as { gcra(n: number, ...a: (string | number)[]): Promise<[number, number]> }
      ).gcra;
      let seed = 11;
      const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
      for (let n = 0; n < 500; n++) {
        const now = 1_700_000_000_000 + Math.floor(random() * 1e6);
        const count = 1 + Math.floor(random() * 3);
        const rates = Array.from({ length: count }, () =>
          gcraRate({
            messages: 1 + Math.floor(random() * 100),
            periodMs: [1000, 60_000][Math.floor(random() * 2)]!,
            burst: 1 + Math.floor(random() * 5),
          }),
        );
        const keys = rates.map((_, i) => `case:${n}:${i}`);
        const tats = rates.map((r) =>
          random() < 0.2 ? undefined : Math.round((now + (random() * 6 - 2) * r.intervalMs) * 1000) / 1000,
        );
        for (const [i, tat] of tats.entries())
          if (tat !== undefined) await client.set(keys[i]!, tat.toFixed(3));
        const horizon = [0, 1000][Math.floor(random() * 2)]!;
        const expected = gcraDecide(tats, rates, now, horizon);
        const [allowed, ms] = await gcra.call(
          client,
          count,
          ...keys,
          String(now),
          horizon,
          ...rates.flatMap((r) => [r.intervalMs, r.toleranceMs]),
        );
        const name = `case ${n}: ${JSON.stringify({ tats, rates, now })}`;
        assert.equal(allowed === 1, expected.allowed, name);
        assert.equal(ms, expected.allowed ? expected.delayMs : expected.waitMs, name);
        for (const [i, key] of keys.entries()) {
          const stored = await client.get(key);
          const want = expected.tats[i];
          if (want === undefined) assert.equal(stored, null, name);
          else assert.ok(Math.abs(Number(stored) - want) < 0.001, `${name}: tat ${stored} vs ${want}`);
        }
      }
    } finally {
      client.disconnect();
    }
  });

  test('three relays sending unevenly hold the pool-wide 30/s within 5 %', async (t) => {
    const [a, b, c] = relays as [RelayProcess, RelayProcess, RelayProcess];
    // Relay a has most of the mail: with static shares it would send at 10/s once b and c are done.
    await Promise.all([
      submitTo(a.ports.smtp, 450, (i) => `a-${i}@pool.test`),
      submitTo(b.ports.smtp, 75, (i) => `b-${i}@pool.test`),
      submitTo(c.ports.smtp, 75, (i) => `c-${i}@pool.test`),
    ]);
    const count = () => [...arrivals.values()].reduce((n, t) => n + t.length, 0);
    await waitFor(() => count() === 600, 120_000, 'all 600 delivered');
    const all = [...arrivals.values()].flat().sort((x, y) => x - y);
    const rate = steadyRate(all);
    assert.ok(Math.abs(rate - 30) <= 1.5, `pool-wide rate ${rate.toFixed(2)}/s`);
    const aRate = steadyRate(arrivals.get('a')!);
    t.diagnostic(`pool-wide ${rate.toFixed(2)}/s, relay a ${aRate.toFixed(2)}/s`);
    assert.ok(aRate > 15, `relay a sent at ${aRate.toFixed(2)}/s, above its static share of 10/s`);
    let allowed = 0;
    for (const relay of relays)
      allowed += await relay.metric('mailfleet_relay_shared_rate_limit_decisions_total', {
        rate_limit: 'bulk',
        decision: 'allowed',
      });
    assert.equal(allowed, 600);
  });

  test('store down: a relay falls back to its share (10/s), counted, never unlimited', async (t) => {
    const [a] = relays as [RelayProcess];
    await redis.stop();
    await waitStore(a, false);
    arrivals.clear();
    await submitTo(a.ports.smtp, 80, (i) => `a-down${i}@pool.test`);
    await waitFor(() => (arrivals.get('a') ?? []).length === 80, 60_000, 'all 80 delivered');
    const rate = steadyRate(arrivals.get('a')!);
    t.diagnostic(`store down: ${rate.toFixed(2)}/s`);
    assert.ok(rate <= 10.5 && rate >= 8.5, `rate on the share ${rate.toFixed(2)}/s`);
    assert.equal(
      await a.metric('mailfleet_relay_shared_rate_limit_decisions_total', {
        rate_limit: 'bulk',
        decision: 'fallback',
      }),
      80,
    );
    await redis.restart();
    await waitStore(a, true);
  });
});
