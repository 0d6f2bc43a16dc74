// Pool-wide reject limits (onExceed: reject) through a real redis-server: three real relays with
// a limit of 30 recipients per hour for the pool (each relay's share: 10) take recipients
// unevenly, and exactly 30 are accepted across the pool (the shares alone would accept 22); with
// the store stopped, and with the store too slow (CLIENT PAUSE), each relay's share decides,
// counted as fallbacks, and every recipient accepted is delivered.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import {
  removeDir,
  smtpTransaction,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';
import { startRedis, startRelaysOnStore, waitStore, type RedisServer } from '../helpers/redis.ts';

/** Per hour, so the whole test runs within one GCRA interval (120 s): no credit comes back. */
const POOL_LIMIT = 30;
const SHARE = POOL_LIMIT / 3;

describe('pool-wide reject limits (redis-server, 3 relays)', () => {
  let upstream: ScriptedUpstream;
  let redis: RedisServer;
  let relays: RelayProcess[] = [];
  const dirs: string[] = [];
  /** Recipients the upstream received. */
  const delivered = () => upstream.received.reduce((n, m) => n + m.to.length, 0);

  /**
   * Offers `count` recipients to `relay` in transactions of up to 10; returns how many were
   * accepted (RCPT TO answered 250; the rest get 451 4.7.0).
   */
  const offer = async (relay: RelayProcess, tag: string, count: number): Promise<number> => {
    let accepted = 0;
    for (let start = 0; start < count; start += 10) {
      const rcpts = Array.from(
        { length: Math.min(10, count - start) },
        (_, i) => `<${tag}-${start + i}@reject.test>`,
      );
      const replies = await smtpTransaction(
        relay.ports.smtp,
        '<a@example.com>',
        rcpts,
        `From: a@example.com\r\nTo: x@reject.test\r\nSubject: ${tag} ${start}\r\n\r\nbody\r\n`,
      );
      const rcptReplies = replies.slice(3, 3 + rcpts.length);
      for (const r of rcptReplies) assert.match(r, /^(250|451 4\.7\.0)/, r);
      accepted += rcptReplies.filter((r) => r.startsWith('250')).length;
    }
    return accepted;
  };
  const decisions = async (decision: string) => {
    let n = 0;
    for (const relay of relays)
      n += await relay.metric('mailfleet_relay_shared_rate_limit_decisions_total', {
        rate_limit: 'signup',
        decision,
      });
    return n;
  };

  before(async () => {
    upstream = await startScripted();
    const redisDir = await tempDir('redis');
    dirs.push(redisDir);
    redis = await startRedis(redisDir);
    // What the operator renders for a Pool-scoped Reject limit of 30/h over 3 ready relays.
    const rateLimits = [
      {
        name: 'signup',
        match: { recipientDomains: ['reject.test'] },
        rate: { messages: SHARE, per: 'hour' },
        burst: SHARE,
        onExceed: 'reject',
        pool: { rate: { messages: POOL_LIMIT, per: 'hour' }, burst: POOL_LIMIT },
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
    for (const relay of relays) await relay.stop();
    await upstream?.stop();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  test('uneven load: exactly the pool limit is accepted across the three relays', async (t) => {
    const [a, b, c] = relays as [RelayProcess, RelayProcess, RelayProcess];
    // Relay a takes most: alone on its share it would accept 10 of its 40, and the pool 10 + 10 + 2.
    const counts = await Promise.all([offer(a, 'a', 40), offer(b, 'b', 12), offer(c, 'c', 2)]);
    const accepted = counts.reduce((x, y) => x + y, 0);
    t.diagnostic(`accepted ${counts.join(' + ')} = ${accepted} of 54 offered, pool limit ${POOL_LIMIT}`);
    assert.equal(accepted, POOL_LIMIT);
    assert.ok(counts[0] > SHARE, `relay a accepted ${counts[0]}, more than its share of ${SHARE}`);
    assert.equal(await decisions('allowed'), POOL_LIMIT);
    assert.equal(await decisions('limited'), 54 - POOL_LIMIT);
    assert.equal(await decisions('fallback'), 0);
    await waitFor(() => delivered() === POOL_LIMIT, 30_000, 'every accepted recipient delivered');
  });

  test('store too slow: the relay answers on its share within the bound, counted', async () => {
    const [a] = relays as [RelayProcess];
    const client = new Redis(redis.url, { password: redis.password });
    try {
      // Every other client's commands wait 3 s: the relay's decision times out after 250 ms.
      await client.client('PAUSE', 3000, 'ALL');
      assert.equal(await offer(a, 'slow', 1), 1);
    } finally {
      await client.client('UNPAUSE');
      client.disconnect();
    }
    assert.equal(await decisions('fallback'), 1);
    await waitFor(() => delivered() === POOL_LIMIT + 1, 30_000, 'the recipient delivered');
  });

  test('store stopped: each relay accepts its share, counted as fallbacks, and delivers it', async () => {
    await redis.stop();
    for (const relay of relays) await waitStore(relay, false);
    const [a, b, c] = relays as [RelayProcess, RelayProcess, RelayProcess];
    const counts = await Promise.all([
      offer(a, 'down-a', 15),
      offer(b, 'down-b', 15),
      offer(c, 'down-c', 15),
    ]);
    // Relay a used one credit of its share during the pause.
    assert.deepEqual(counts, [SHARE - 1, SHARE, SHARE]);
    assert.equal(await decisions('fallback'), 1 + 3 * SHARE - 1);
    const total = POOL_LIMIT + 1 + 3 * SHARE - 1;
    await waitFor(() => delivered() === total, 30_000, 'every accepted recipient delivered');
    for (const relay of relays)
      assert.equal(await relay.metric('mailfleet_relay_queue_jobs'), 0, 'nothing left queued');
  });
});
