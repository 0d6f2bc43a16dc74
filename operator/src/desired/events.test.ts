// spec.events in the pool's objects: the rendered relay config, the mounted secret, the egress,
// the restart checksum, and the EventsDelivering condition from the scraped backlog.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { fakeGenerators, observed, relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import { findCondition } from '../api/conditions.ts';
import type { Condition, RelayPoolSpec } from '../api/types.ts';
import { networkPolicy } from './networkpolicy.ts';
import { podTemplate } from './pod.ts';
import { eventsCondition, eventsConfig, eventsPort, eventsSecretSource } from './events.ts';
import { desiredState } from './state.ts';

const pool = (spec: Partial<RelayPoolSpec> = {}) => withDefaults(relayPool(spec)).resource;
const EVENTS = { url: 'https://hooks.example.com/mail', secretRef: { name: 'hook-secret' } };

describe('spec.events', () => {
  test('without it: no events in the relay config, no secret, no condition', () => {
    const p = pool();
    assert.equal(eventsConfig(p), undefined);
    assert.equal(eventsSecretSource(p), undefined);
    assert.equal(eventsCondition(p, [{ pod: 'a', oldestSeconds: 9999 }]), undefined);
  });

  test('the relay config carries the defaulted spec (test/unit/rendered-relay-config.test.ts: the relay accepts it)', () => {
    const rendered = eventsConfig(pool({ events: { ...EVENTS, types: ['bounced', 'complained'] } }))!;
    assert.deepEqual(rendered, {
      url: 'https://hooks.example.com/mail',
      secretFile: 'events/secret',
      types: ['bounced', 'complained'],
      batchSize: 100,
      batchInterval: '1s',
      maxBytes: 256 * 1024 * 1024,
    });
  });

  test('the whole relay config of a pool with events validates, and the secret is projected', () => {
    const p = pool({ events: { ...EVENTS, secretRef: { name: 'hook-secret', key: 'hmac' } } });
    const d = desiredState(observed({ pool: relayPool({ events: p.spec.events! }) }), fakeGenerators());
    const configMap = d.apply.find(
      (o) => o.kind === 'ConfigMap' && (o as { data?: Record<string, string> }).data?.['relay.yaml'],
    ) as { data: Record<string, string> } | undefined;
    const relayYaml = parse(configMap!.data['relay.yaml']!) as { events?: { url: string } };
    assert.equal(relayYaml.events?.url, EVENTS.url);
    const sources = podTemplate({ pool: p } as Parameters<typeof podTemplate>[0]).spec?.volumes?.flatMap(
      (v) => v.projected?.sources ?? [],
    );
    assert.ok(
      sources?.some(
        (s) =>
          s.secret?.name === 'hook-secret' &&
          s.secret.items?.[0]?.key === 'hmac' &&
          s.secret.items[0].path === 'events/secret',
      ),
    );
  });

  const ports: [string, string, number][] = [
    ['https without a port: 443', 'https://hooks.example.com/x', 443],
    ['http without a port: 80', 'http://collector.mail.svc/x', 80],
    ['the port in the URL', 'http://collector.mail.svc:8088/ingest', 8088],
  ];
  for (const [name, url, port] of ports)
    test(`egress to the receiver: ${name}`, () => {
      assert.equal(eventsPort({ ...pool().spec, ...EVENTS, url } as never), port);
      const egress =
        networkPolicy({ pool: pool({ events: { ...EVENTS, url } }), managementNamespaces: [] })?.spec
          ?.egress ?? [];
      assert.ok(egress.some((r) => r.ports?.some((x) => x.port === port && x.protocol === 'TCP')));
    });

  const lags: {
    name: string;
    relays: { pod: string; oldestSeconds?: number }[];
    status: string;
    reason: string;
  }[] = [
    { name: 'no relay read yet: Unknown', relays: [{ pod: 'a' }], status: 'Unknown', reason: 'NotScraped' },
    {
      name: 'every backlog younger than maxLag: True',
      relays: [
        { pod: 'a', oldestSeconds: 0 },
        { pod: 'b', oldestSeconds: 899 },
      ],
      status: 'True',
      reason: 'AsExpected',
    },
    {
      name: 'one relay older than maxLag: False, Behind',
      relays: [
        { pod: 'a', oldestSeconds: 3 },
        { pod: 'b', oldestSeconds: 3600 },
      ],
      status: 'False',
      reason: 'Behind',
    },
  ];
  for (const c of lags)
    test(`EventsDelivering: ${c.name}`, () => {
      const got = eventsCondition(pool({ events: EVENTS }), c.relays)!;
      assert.equal(got.status, c.status);
      assert.equal(got.reason, c.reason);
      if (c.reason === 'Behind')
        assert.match(got.message, /^b: oldest unsent event 3600s old \(maxLag 15m\)/);
    });

  test('the pool status carries EventsDelivering from the scraped relays, and drops it with spec.events', () => {
    const at = Date.now();
    const behind = desiredState(
      observed({
        pool: relayPool({ events: { ...EVENTS, maxLag: '1m' } }),
        relayQueues: [{ pod: 'transactional-a', queued: 0, scrapedAt: at, eventsOldestSeconds: 120 }],
      }),
      fakeGenerators(),
    );
    const status = behind.statuses.find((s) => s.kind === 'RelayPool')?.status as { conditions: Condition[] };
    assert.equal(findCondition(status.conditions, 'EventsDelivering')?.reason, 'Behind');
    const off = desiredState(
      observed({ pool: { ...relayPool(), status: { conditions: status.conditions } } as never }),
      fakeGenerators(),
    );
    const offStatus = off.statuses.find((s) => s.kind === 'RelayPool')?.status as { conditions: Condition[] };
    assert.equal(findCondition(offStatus.conditions, 'EventsDelivering'), undefined);
  });
});
