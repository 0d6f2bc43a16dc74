// MTA-STS policies kept beyond a relay's memory (RFC 8461 §5.1 caching): two relays of a pool
// share a real redis-server (test/helpers/redis.ts) as `sharedState`; a third relay has none and
// keeps its policies in `<spool.dir>/mta-sts.json`. The policies (helpers/tls/mta-sts.ts) list an
// MX host the domains do not use, so a relay that knows a policy defers the mail
// (validation-failure) and one that knows none delivers it: after the policy host is stopped,
// relay B enforces the policy relay A fetched, and relay C after a restart the one it fetched.
// The CA, MX host, policy server and dnsmasq are the shared TLS fixture (helpers/tls/fixture.ts).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { relayConfig, removeDir, startRelay, tempDir, type RelayProcess } from '../helpers/relay/peers.ts';
import type { SmtpPeer } from '../helpers/tls/test-ca.ts';
import { stsDnsRecords, stsPolicy, type PolicyServer, type StsSite } from '../helpers/tls/mta-sts.ts';
import { firstOutcome, startTlsFixture, type TlsFixture } from '../helpers/tls/fixture.ts';
import { startRedis, waitStore, type RedisServer } from '../helpers/redis.ts';

const POLICY_ADDRESS = '127.0.24.1';
const GOOD = { name: 'mx.good.store.test', address: '127.0.24.2' };
const KEY_PREFIX = 'mailfleet:mail/pool:';

const SITES: Record<string, StsSite> = {
  'pool.store.test': { id: '1', mx: GOOD, body: stsPolicy('enforce', ['mx.elsewhere.test']) },
  'file.store.test': { id: '1', mx: GOOD, body: stsPolicy('enforce', ['mx.elsewhere.test']) },
};

describe('MTA-STS policies in the pool store and the policy file', () => {
  let fixture: TlsFixture;
  let policies: PolicyServer;
  let good: SmtpPeer;
  let redis: RedisServer;
  const relays: Record<'a' | 'b' | 'c', RelayProcess> = {} as never;
  const configs: Record<string, Record<string, unknown>> = {};

  /** Sends one message through a relay and returns its accounting line (first outcome). */
  const send = (name: 'a' | 'b' | 'c', to: string) => firstOutcome(relays[name], to);

  before(async () => {
    fixture = await startTlsFixture({
      prefix: 'mtasts-store',
      peers: [GOOD],
      sites: SITES,
      policyAddress: POLICY_ADDRESS,
      dns: () => stsDnsRecords(SITES, POLICY_ADDRESS, [GOOD]),
    });
    policies = fixture.policies!;
    good = fixture.peers.get(GOOD.name)!;
    redis = await startRedis(fixture.dir);
    for (const name of ['a', 'b', 'c'] as const) {
      const spool = await tempDir(`spool-${name}`);
      configs[name] = relayConfig(spool, 0, {
        delivery: fixture.delivery({ tlsPolicy: { default: 'mta-sts' } }),
        // One attempt per message within the test.
        retry: { firstRetry: '1h', maxBackoff: '1h', maxQueueLifetime: '1d' },
        dsn: { enabled: false },
        ...(name === 'c'
          ? {}
          : { sharedState: { url: redis.url, passwordFile: redis.passwordFile, keyPrefix: KEY_PREFIX } }),
      });
      relays[name] = await startRelay(configs[name]!, undefined, fixture.env);
    }
    await waitStore(relays.a, true);
    await waitStore(relays.b, true);
  });
  after(async () => {
    for (const relay of Object.values(relays)) await relay?.stop();
    await redis?.stop();
    await fixture?.stop();
    for (const relay of Object.values(relays)) await removeDir(relay.spoolDir);
  });

  test('relay A fetches the policy and enforces it; the pool store keeps it for max_age', async () => {
    const line = await send('a', 'a1@pool.store.test');
    assert.equal(line.outcome, 'deferred');
    assert.equal(line.tlsResult, 'validation-failure');
    assert.equal(policies.fetches.get('pool.store.test'), 1);
    const client = new Redis(redis.url, { password: redis.password });
    try {
      const ttl = await client.pttl(`${KEY_PREFIX}mta-sts:pool.store.test`);
      assert.ok(ttl > 86000_000 && ttl <= 86400_000, `TTL ${ttl} ms, max_age 86400 s`);
    } finally {
      client.disconnect();
    }
  });

  test('relay C (no shared store) fetches its own', async () => {
    const line = await send('c', 'c1@file.store.test');
    assert.equal(line.tlsResult, 'validation-failure');
    assert.equal(policies.fetches.get('file.store.test'), 1);
  });

  test('with the policy host stopped, relay B enforces what A fetched, and a restarted C its own', async () => {
    await policies.stop();
    const b = await send('b', 'b1@pool.store.test');
    assert.equal(b.outcome, 'deferred');
    assert.equal(b.tlsPolicy, 'mta-sts');
    assert.equal(b.tlsResult, 'validation-failure');
    await relays.c.stop();
    relays.c = await startRelay(configs.c!, relays.c.configPath, fixture.env);
    const c = await send('c', 'c2@file.store.test');
    assert.equal(c.outcome, 'deferred');
    assert.equal(c.tlsResult, 'validation-failure');
    assert.deepEqual(good.recipients, [], 'no MX host outside the policies got mail');
  });
});
