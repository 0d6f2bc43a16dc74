import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';
import { networkPolicy } from './networkpolicy.ts';
import { podTemplate } from './pod.ts';
import {
  sharedStateCondition,
  sharedStateConfig,
  sharedStatePasswordSource,
  sharedStatePort,
} from './shared-state.ts';

const pool = (spec: Partial<RelayPoolSpec> = {}) => withDefaults(relayPool(spec)).resource;

describe('spec.sharedState', () => {
  test('without it the relays keep per-relay state: no sharedState, no Secret, no egress to a store', () => {
    const p = pool();
    assert.equal(sharedStateConfig(p), undefined);
    assert.equal(sharedStatePasswordSource(p), undefined);
    const egressPorts = (networkPolicy({ pool: p, managementNamespaces: [] })?.spec?.egress ?? []).flatMap(
      (r) => (r.ports ?? []).map((x) => x.port),
    );
    assert.ok(!egressPorts.includes(6379));
  });

  test("the relay config names the store and a key prefix of the pool's own", () => {
    const p = pool({ sharedState: { url: 'redis://valkey.mail.svc:6380' } });
    assert.deepEqual(sharedStateConfig(p), {
      url: 'redis://valkey.mail.svc:6380',
      keyPrefix: `mailfleet:${p.metadata.namespace}/${p.metadata.name}:`,
    });
  });

  test("the password Secret is projected into the relay's config volume and named in the config", () => {
    const p = pool({
      sharedState: {
        url: 'rediss://store.example:6380',
        passwordSecretRef: { name: 'valkey-auth', key: 'pw' },
      },
    });
    assert.equal(sharedStateConfig(p)?.passwordFile, 'shared-state/password');
    const sources = podTemplate({ pool: p } as Parameters<typeof podTemplate>[0]).spec?.volumes?.flatMap(
      (v) => v.projected?.sources ?? [],
    );
    assert.ok(
      sources?.some(
        (s) =>
          s.secret?.name === 'valkey-auth' &&
          s.secret.items?.[0]?.key === 'pw' &&
          s.secret.items[0].path === 'shared-state/password',
      ),
    );
  });

  const ports: [string, string, number][] = [
    ['the port in the URL', 'redis://store:6380', 6380],
    ['6379 when the URL names none', 'redis://store', 6379],
    ['TLS with its port', 'rediss://store.example:16379', 16379],
    // Found by operator-fuzz: URL parsing threw inside desiredState.
    ['6379 for a URL that does not parse (a port over 65535)', 'redis://store:99999', 6379],
  ];
  for (const [name, url, port] of ports)
    test(`egress to the store: ${name}`, () => {
      assert.equal(sharedStatePort({ url }), port);
      const egress =
        networkPolicy({ pool: pool({ sharedState: { url } }), managementNamespaces: [] })?.spec?.egress ?? [];
      assert.ok(egress.some((r) => r.ports?.some((x) => x.port === port && x.protocol === 'TCP')));
    });
});

describe('SharedStateAvailable', () => {
  const withStore = pool({ sharedState: { url: 'redis://valkey:6379' } });
  const cases: {
    name: string;
    pool: ReturnType<typeof pool>;
    relays: { pod: string; sharedStateUp?: boolean }[] | undefined;
    status: string;
    reason: string;
    mentions?: RegExp;
  }[] = [
    {
      name: 'no spec.sharedState: False NotConfigured, saying what each relay keeps to itself',
      pool: pool(),
      relays: [{ pod: 'r-0', sharedStateUp: false }],
      status: 'False',
      reason: 'NotConfigured',
      mentions: /own suppression list and delivery backoff, and enforces its share of Pool-scoped RateLimits/,
    },
    {
      name: 'no relay scraped yet: Unknown',
      pool: withStore,
      relays: [{ pod: 'r-0' }],
      status: 'Unknown',
      reason: 'NotScraped',
    },
    {
      name: 'the operator does not scrape: Unknown',
      pool: withStore,
      relays: undefined,
      status: 'Unknown',
      reason: 'NotScraped',
    },
    {
      name: 'every relay reaches the store: True',
      pool: withStore,
      relays: [
        { pod: 'r-0', sharedStateUp: true },
        { pod: 'r-1', sharedStateUp: true },
      ],
      status: 'True',
      reason: 'Connected',
      mentions: /2 of 2 relays/,
    },
    {
      name: 'one relay cut off: False, naming it and what it does meanwhile',
      pool: withStore,
      relays: [{ pod: 'r-0', sharedStateUp: true }, { pod: 'r-1', sharedStateUp: false }, { pod: 'r-2' }],
      status: 'False',
      reason: 'StoreUnreachable',
      mentions: /1 of 2 relays .*\(r-1\).*fall back to each relay's share/,
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const condition = sharedStateCondition(c.pool, c.relays);
      assert.equal(condition?.type, 'SharedStateAvailable');
      assert.equal(condition?.status, c.status);
      assert.equal(condition?.reason, c.reason);
      if (c.mentions) assert.match(condition?.message ?? '', c.mentions);
    });
});
