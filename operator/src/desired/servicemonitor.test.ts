import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podLabelMeta, serviceMonitor } from './servicemonitor.ts';
import { POOL_LABEL } from './meta.ts';
import { podTemplate } from './pod.ts';
import { trackerDeployment, trackerService } from './tracker.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';

const pool = withDefaults(relayPool({ monitoring: { serviceMonitor: true, interval: '15s' } })).resource;

test('pod label to Prometheus meta label', async (t) => {
  const cases = [
    { name: 'dots and slashes become underscores', label: 'mailfleet.dev/pool', meta: 'mailfleet_dev_pool' },
    {
      name: 'dashes become underscores',
      label: 'app.kubernetes.io/part-of',
      meta: 'app_kubernetes_io_part_of',
    },
    { name: 'underscores and digits stay', label: 'a_b9', meta: 'a_b9' },
  ];
  for (const c of cases)
    await t.test(c.name, () => assert.equal(podLabelMeta(c.label), `__meta_kubernetes_pod_label_${c.meta}`));
});

test('the ServiceMonitor turns the pod pool label into `pool` and keeps the namespace', () => {
  const sm = serviceMonitor(pool, true);
  assert.ok(sm);
  const [endpoint] = sm.spec.endpoints as {
    relabelings: { sourceLabels: string[]; targetLabel: string }[];
  }[];
  assert.ok(endpoint);
  const byTarget = Object.fromEntries(endpoint.relabelings.map((r) => [r.targetLabel, r.sourceLabels]));
  assert.deepEqual(byTarget.pool, ['__meta_kubernetes_pod_label_mailfleet_dev_pool']);
  assert.deepEqual(byTarget.namespace, ['__meta_kubernetes_namespace']);
  assert.equal((endpoint as unknown as { interval: string }).interval, '15s');
});

test('the label the relabelling reads is the one the relay pods carry', () => {
  const template = podTemplate({ pool, image: 'mailfleet:test', checksum: 'x', persistentSpool: false });
  assert.equal(template.metadata?.labels?.[POOL_LABEL], 'transactional');
  assert.equal(POOL_LABEL, 'mailfleet.dev/pool');
});

test("the tracker's ServiceMonitor selects the tracker Service alone and names the pool tracker_pool", () => {
  const relay = serviceMonitor(pool, true)!;
  const tracker = serviceMonitor(pool, true, 'tracker')!;
  const service = trackerService(pool);
  const selects = (sm: typeof relay) =>
    Object.entries((sm.spec.selector as { matchLabels: Record<string, string> }).matchLabels).every(
      ([k, v]) => service.metadata?.labels?.[k] === v,
    );
  assert.equal(selects(tracker), true, 'the tracker ServiceMonitor selects the tracker Service');
  assert.equal(selects(relay), false, "the relays' ServiceMonitor does not");
  assert.equal(tracker.metadata?.name, 'transactional-tracker');
  const [endpoint] = tracker.spec.endpoints as {
    port: string;
    relabelings: { sourceLabels: string[]; targetLabel: string }[];
  }[];
  assert.equal(endpoint?.port, 'http');
  assert.deepEqual(
    endpoint?.relabelings.map((r) => [r.targetLabel, r.sourceLabels]),
    [
      ['tracker_pool', ['__meta_kubernetes_pod_label_mailfleet_dev_pool']],
      ['namespace', ['__meta_kubernetes_namespace']],
    ],
    'no `pool` label: tracker targets are not counted as relays (up{pool!=""})',
  );
  assert.ok(service.spec?.ports?.some((p) => p.name === 'http'));
  const template = trackerDeployment({ pool, image: 'mailfleet:test' }).spec?.template;
  assert.equal(template?.metadata?.labels?.[POOL_LABEL], 'transactional');
});
