// Pool-wide connection caps in direct (MX) delivery, through a real redis-server: three real relays
// deliver to a recipient domain whose two MX hosts (equal preference, so each delivery picks one at
// random) dnsmasq serves on 127.0.0.2 and 127.0.0.3. A RateLimit on the MX site (recipientMXHosts)
// caps the pool at 4 connections (share 1 each). A relay keeps one SMTP pool per MX address, but
// every connection takes its lease under the one limit destination, the site of both MX hosts, so
// the connections open to the two hosts together never exceed 4 across the relays, and reach 4.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { removeDir, waitFor, type RelayProcess } from '../helpers/relay/peers.ts';
import { submitTo } from '../helpers/relay/rate.ts';
import { startDnsmasq, type TestDns } from '../helpers/relay/dnsmasq.ts';
import { startCountingUpstream, type CountingUpstream } from '../helpers/relay/counting-upstream.ts';
import { startRedisWithClient, startRelaysOnStore, type RedisServer } from '../helpers/redis.ts';

const POOL_CONNECTIONS = 4;
const SHARE = Math.floor(POOL_CONNECTIONS / 3);
const MX = ['127.0.0.2', '127.0.0.3'];
/** The limit destination of the MX site: both hosts, sorted (shaping/match.ts destinationKey). */
const KEY = 'mailfleet:test/outbound:connections:mx-site:mx:mx1.conn.test,mx2.conn.test';

describe('pool-wide connection caps in direct delivery to two MX hosts (redis-server, 3 relays)', () => {
  let upstream: CountingUpstream;
  let dns: TestDns;
  let redis: RedisServer;
  let store: Redis;
  let relays: RelayProcess[] = [];
  const dirs: string[] = [];

  before(async () => {
    upstream = await startCountingUpstream({ hosts: MX });
    dns = await startDnsmasq([
      '--mx-host=conn.test,mx1.conn.test,10',
      '--mx-host=conn.test,mx2.conn.test,10',
      `--host-record=mx1.conn.test,${MX[0]}`,
      `--host-record=mx2.conn.test,${MX[1]}`,
    ]);
    ({ redis, store } = await startRedisWithClient(dirs));
    // What the operator renders for a Pool-scoped limit of 4 connections over 3 ready relays.
    const rateLimits = [
      {
        name: 'mx-site',
        match: { recipientMXHosts: ['*.conn.test'] },
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
      config: {
        rateLimits,
        delivery: {
          mode: 'direct',
          ehloName: 'relay.test',
          dns: { servers: [dns.server] },
          directPort: upstream.port,
          connectTimeout: '2s',
          commandTimeout: '5s',
        },
      },
    });
  });
  after(async () => {
    store?.disconnect();
    for (const relay of relays) await relay.stop();
    await upstream?.stop();
    await dns?.stop();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  test('a backlog on three relays: at most the pool cap open to both MX hosts together, and all of it used', async (t) => {
    const tags = ['a', 'b', 'c'];
    await Promise.all(
      relays.map((relay, i) => submitTo(relay.ports.smtp, 40, (k) => `${tags[i]}-${k}@conn.test`)),
    );
    // The leases the store holds for the MX site, at their most while the backlog drains.
    let mostLeases = 0;
    await waitFor(
      async () => {
        mostLeases = Math.max(mostLeases, await store.zcard(KEY));
        return tags.every((tag) =>
          Array.from({ length: 40 }, (_, k) => `${tag}-${k}@conn.test`).every((r) =>
            upstream.delivered.has(r),
          ),
        );
      },
      60_000,
      'all 120 delivered',
    );
    let fallbacks = 0;
    for (const relay of relays)
      fallbacks += await relay.metric('mailfleet_relay_shared_connection_lease_decisions_total', {
        rate_limit: 'mx-site',
        decision: 'fallback',
      });
    const sessions = MX.map((a) => upstream.sessionsByAddress.get(a) ?? 0);
    t.diagnostic(
      `peak ${upstream.peak} open to both MX hosts, cap ${POOL_CONNECTIONS}; sessions per MX ${sessions.join('/')}; ` +
        `at most ${mostLeases} leases seen under ${KEY}; ${fallbacks} fallbacks`,
    );
    assert.equal(fallbacks, 0);
    assert.ok(
      sessions.every((n) => n > 0),
      'both MX hosts got connections',
    );
    assert.ok(upstream.peak <= POOL_CONNECTIONS, `peak ${upstream.peak}`);
    // The shares alone would never open more than 3.
    assert.equal(upstream.peak, POOL_CONNECTIONS);
    assert.ok(mostLeases > 0, 'leases taken under the MX site');
    await waitFor(async () => (await store.zcard(KEY)) === 0, 10_000, 'leases released');
  });
});
