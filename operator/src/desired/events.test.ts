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
import {
  eventsCondition,
  eventsConfig,
  eventsLags,
  eventsPort,
  eventsSecretSource,
  type EventsLag,
} from './events.ts';
import { desiredState } from './state.ts';

const pool = (spec: Partial<RelayPoolSpec> = {}) => withDefaults(relayPool(spec)).resource;
const EVENTS = { url: 'https://hooks.example.com/mail', secretRef: { name: 'hook-secret' } };

describe('spec.events', () => {
  test('without it: no events in the relay config, no secret, no condition', () => {
    const p = pool();
    assert.equal(eventsConfig(p), undefined);
    assert.equal(eventsSecretSource(p), undefined);
    assert.equal(eventsCondition(p, [{ pod: 'a', kind: 'relay', oldestSeconds: 9999 }]), undefined);
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
    pods: EventsLag[];
    status: string;
    reason: string;
    /** The start of the message (Behind only): the pods that lag and the worst age. */
    message?: RegExp;
  }[] = [
    {
      name: 'no pod read yet: Unknown',
      pods: [
        { pod: 'a', kind: 'relay' },
        { pod: 't', kind: 'tracker' },
      ],
      status: 'Unknown',
      reason: 'NotScraped',
    },
    {
      name: 'every backlog younger than maxLag: True',
      pods: [
        { pod: 'a', kind: 'relay', oldestSeconds: 0 },
        { pod: 'b', kind: 'relay', oldestSeconds: 899 },
        { pod: 't', kind: 'tracker', oldestSeconds: 10 },
      ],
      status: 'True',
      reason: 'AsExpected',
    },
    {
      name: 'one relay older than maxLag: False, Behind, naming the relay',
      pods: [
        { pod: 'a', kind: 'relay', oldestSeconds: 3 },
        { pod: 'b', kind: 'relay', oldestSeconds: 3600 },
      ],
      status: 'False',
      reason: 'Behind',
      message: /^b: oldest unsent event 3600s old \(maxLag 15m\).*\(mailfleet_relay_events_failures_total\)$/,
    },
    {
      name: 'relays keep up, a tracker pod does not: False, Behind, naming the tracker pod',
      pods: [
        { pod: 'a', kind: 'relay', oldestSeconds: 0 },
        { pod: 'news-tracker-x', kind: 'tracker', oldestSeconds: 1200 },
        { pod: 'news-tracker-y', kind: 'tracker', oldestSeconds: 2 },
      ],
      status: 'False',
      reason: 'Behind',
      message:
        /^news-tracker-x \(tracker\): oldest unsent event 1200s old \(maxLag 15m\).*\(mailfleet_tracker_events_failures_total\)$/,
    },
    {
      name: 'only a tracker pod read (the relays not yet): its backlog decides',
      pods: [
        { pod: 'a', kind: 'relay' },
        { pod: 'news-tracker-x', kind: 'tracker', oldestSeconds: 1 },
      ],
      status: 'True',
      reason: 'AsExpected',
    },
    {
      name: 'a relay and a tracker pod behind: both named, the worst age, both counters',
      pods: [
        { pod: 'b', kind: 'relay', oldestSeconds: 1000 },
        { pod: 'news-tracker-x', kind: 'tracker', oldestSeconds: 1200 },
      ],
      status: 'False',
      reason: 'Behind',
      message:
        /^b, news-tracker-x \(tracker\): oldest unsent event 1200s old .*\(mailfleet_relay_events_failures_total, mailfleet_tracker_events_failures_total\)$/,
    },
  ];
  for (const c of lags)
    test(`EventsDelivering: ${c.name}`, () => {
      const got = eventsCondition(pool({ events: EVENTS }), c.pods)!;
      assert.equal(got.status, c.status);
      assert.equal(got.reason, c.reason);
      if (c.message) assert.match(got.message, c.message);
    });

  test('the backlogs the condition reads: every relay and every tracker pod, unread ones without an age', () => {
    assert.deepEqual(
      eventsLags({
        relayQueues: [{ pod: 'r0', eventsOldestSeconds: 5 }, { pod: 'r1' }],
        trackers: [{ pod: 't0', eventsOldestSeconds: 7 }],
      }),
      [
        { pod: 'r0', kind: 'relay', oldestSeconds: 5 },
        { pod: 'r1', kind: 'relay' },
        { pod: 't0', kind: 'tracker', oldestSeconds: 7 },
      ],
    );
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

  test('the pool status names a tracker pod whose backlog is behind while its relays keep up', () => {
    const at = Date.now();
    const d = desiredState(
      observed({
        pool: relayPool({ events: { ...EVENTS, maxLag: '1m' } }),
        relayQueues: [{ pod: 'transactional-a', queued: 0, scrapedAt: at, eventsOldestSeconds: 0 }],
        trackers: [{ pod: 'transactional-tracker-x', scrapedAt: at, eventsOldestSeconds: 300 }],
      }),
      fakeGenerators(),
    );
    const status = d.statuses.find((s) => s.kind === 'RelayPool')?.status as { conditions: Condition[] };
    const c = findCondition(status.conditions, 'EventsDelivering');
    assert.equal(c?.status, 'False');
    assert.match(c?.message ?? '', /^transactional-tracker-x \(tracker\): oldest unsent event 300s old/);
  });
});
