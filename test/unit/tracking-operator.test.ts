// A pool whose domains track: the relay config asks for tracking with the key file the pod
// mounts, the tracking key Secret is generated once and then kept, a malformed one blocks the
// pool; a pool whose domains do not track gets none of it. Imports both programs (the rendered
// config must be one the relay accepts), as test/unit/rendered-relay-config.test.ts does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { desiredState } from '../../operator/src/desired/state.ts';
import type { Desired, KubeObject } from '../../operator/src/desired/types.ts';
import { findCondition } from '../../operator/src/api/conditions.ts';
import { validateConfig } from '../../relay/src/config/validate.ts';
import {
  fakeGenerators,
  observed,
  relayPool,
  secret,
  secrets,
  sendingDomain,
} from '../helpers/operator/fixtures.ts';
import type { Condition, TrackingSpec } from '../../operator/src/api/types.ts';

const tracked = (tracking: TrackingSpec) => sendingDomain('example.com', { tracking });
const relayYaml = (d: Desired) => {
  const cm = d.apply.find((o) => o.kind === 'ConfigMap') as KubeObject & { data: Record<string, string> };
  const v = validateConfig(parse(cm.data['relay.yaml']!));
  assert.ok(v.ok, JSON.stringify(v));
  return v.config;
};
const projected = (d: Desired) => {
  const w = d.apply.find((o) => o.kind === 'Deployment') as KubeObject & {
    spec: {
      template: {
        spec: { volumes: { name: string; projected?: { sources: { secret?: { name: string } }[] } }[] };
      };
    };
  };
  const config = w.spec.template.spec.volumes.find((v) => v.name === 'config');
  return (config?.projected?.sources ?? []).flatMap((s) => (s.secret ? [s.secret.name] : []));
};

type Pod = {
  metadata: { labels: Record<string, string> };
  spec: {
    containers: { args: string[]; securityContext: Record<string, unknown> }[];
    volumes: { secret?: { secretName: string } }[];
  };
};

/** The tracker: its own Deployment and Service, pods the relay Service cannot select, only the key mounted. */
function checkTracker(d: Desired): void {
  const deployment = d.apply.find(
    (o) => o.kind === 'Deployment' && o.metadata?.name === 'transactional-tracker',
  ) as (KubeObject & { spec: { template: Pod } }) | undefined;
  const service = d.apply.find(
    (o) => o.kind === 'Service' && o.metadata?.name === 'transactional-tracker',
  ) as (KubeObject & { spec: { selector: Record<string, string> } }) | undefined;
  assert.ok(deployment && service, 'tracker Deployment and Service');
  assert.equal((deployment.spec as { replicas?: number }).replicas, 2);
  const pod = deployment.spec.template;
  assert.deepEqual(pod.spec.containers[0]!.args.slice(0, 3), [
    'tracker',
    '--key-file',
    '/etc/mailfleet-tracker/key',
  ]);
  for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(pod.metadata.labels[k], v);
  const relayService = d.apply.find(
    (o) => o.kind === 'Service' && o.metadata?.name === 'transactional',
  ) as KubeObject & {
    spec: { selector: Record<string, string> };
  };
  assert.ok(
    Object.entries(relayService.spec.selector).some(([k, v]) => pod.metadata.labels[k] !== v),
    'the relay Service does not select tracker pods',
  );
  assert.deepEqual(
    pod.spec.volumes.map((v) => v.secret?.secretName),
    ['transactional-tracking'],
  );
  assert.equal(pod.spec.containers[0]!.securityContext.readOnlyRootFilesystem, true);
  assert.equal(pod.spec.containers[0]!.securityContext.runAsNonRoot, true);
}

const cases: {
  name: string;
  domain: ReturnType<typeof sendingDomain>;
  existing?: Record<string, string>;
  check: (d: Desired) => void;
}[] = [
  {
    name: 'opens and clicks: per-domain settings, key file, Secret created and mounted',
    domain: tracked({ opens: true, clicks: true, host: 't.example.com' }),
    check: (d) => {
      const c = relayYaml(d);
      assert.deepEqual(c.sendingDomains[0]?.tracking, { opens: true, clicks: true, host: 't.example.com' });
      assert.equal(c.tracking?.keyFile, 'tracking/key');
      assert.ok(d.create.some((o) => o.kind === 'Secret' && o.metadata?.name === 'transactional-tracking'));
      assert.ok(projected(d).includes('transactional-tracking'));
      checkTracker(d);
    },
  },
  {
    name: 'an existing key is kept, never regenerated',
    domain: tracked({ opens: true, host: 't.example.com' }),
    existing: { key: 'an-existing-tracking-key-0123456789' },
    check: (d) => {
      assert.ok(!d.create.some((o) => o.metadata?.name === 'transactional-tracking'));
      assert.ok(d.keep.includes('Secret/transactional-tracking'));
    },
  },
  {
    name: 'a key shorter than 16 bytes blocks the pool',
    domain: tracked({ clicks: true, host: 't.example.com' }),
    existing: { key: 'short' },
    check: (d) => {
      const pool = d.statuses.find((s) => s.kind === 'RelayPool');
      const ready = findCondition(pool?.status.conditions as Condition[], 'Ready');
      assert.equal(ready?.reason, 'SecretMalformed');
      assert.ok(!d.apply.some((o) => o.kind === 'ConfigMap'));
    },
  },
  {
    name: 'tracking off (both false): nothing of it',
    domain: tracked({ opens: false, clicks: false }),
    check: (d) => {
      const c = relayYaml(d);
      assert.equal(c.sendingDomains[0]?.tracking, undefined);
      assert.equal(c.tracking, undefined);
      assert.ok(!d.create.some((o) => o.metadata?.name === 'transactional-tracking'));
      assert.ok(!projected(d).includes('transactional-tracking'));
      assert.ok(!d.apply.some((o) => o.metadata?.name === 'transactional-tracker'), 'no tracker');
    },
  },
  {
    name: 'no tracking field: nothing of it',
    domain: sendingDomain('example.com'),
    check: (d) => {
      assert.equal(relayYaml(d).tracking, undefined);
      assert.ok(!projected(d).includes('transactional-tracking'));
    },
  },
];

for (const c of cases)
  test(c.name, () => {
    const d = desiredState(
      observed({
        pool: relayPool({}),
        domains: [c.domain],
        secrets: secrets(...(c.existing ? [secret('transactional-tracking', c.existing)] : [])),
      }),
      fakeGenerators(),
    );
    c.check(d);
  });

test('a pool deleted with Drain stops its tracker first and waits for its pods to go; Discard does not wait', async (t) => {
  const replicas = (d: Desired) =>
    (
      d.apply.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'transactional-tracker') as
        (KubeObject & { spec: { replicas?: number } }) | undefined
    )?.spec.replicas;
  const deleted = (policy: 'Drain' | 'Discard') => {
    const pool = relayPool({
      deletionPolicy: policy,
      events: { url: 'https://hooks.example/in', secretRef: { name: 'hmac' } },
    });
    pool.metadata.finalizers = ['mailfleet.dev/drain'];
    pool.metadata.deletionTimestamp = '2026-12-05T20:00:00Z' as unknown as Date;
    return pool;
  };
  const at = Date.parse('2026-12-05T20:00:05Z');
  const decide = (pool: ReturnType<typeof relayPool>) =>
    desiredState(
      observed({
        pool,
        domains: [tracked({ opens: true, clicks: true, host: 't.example.com' })],
        secrets: secrets(secret('hmac', { secret: 'an-events-secret-0123456789' })),
        relayQueues: [
          {
            pod: 'transactional-a',
            queued: 0,
            scrapedAt: at,
            intakeClosedAt: at - 1000,
            eventsUnsent: 0,
            quietSince: at - 1000,
          },
        ],
        trackers: [{ pod: 'transactional-tracker-x' }],
        now: new Date(at),
      }),
      fakeGenerators(),
    );
  const deleting = (d: Desired) =>
    findCondition(
      d.statuses.find((s) => s.kind === 'RelayPool')?.status.conditions as Condition[],
      'Deleting',
    );
  await t.test('live: two tracker replicas', () => assert.equal(replicas(decide(relayPool({}))), 2));
  await t.test('Drain: scaled to 0, the finalizer stays while a tracker pod is left', () => {
    const d = decide(deleted('Drain'));
    assert.equal(replicas(d), 0);
    assert.equal(deleting(d)?.reason, 'StoppingTracker');
    assert.equal(d.finalizer, undefined);
  });
  await t.test('Discard: the finalizer goes at once', () => {
    const d = decide(deleted('Discard'));
    assert.equal(deleting(d)?.reason, 'Discarding');
    assert.deepEqual(d.finalizer, { remove: 'mailfleet.dev/drain' });
  });
});
