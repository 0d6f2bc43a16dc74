import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, headlessService, service } from './service.ts';
import { podDisruptionBudget } from './pdb.ts';
import { horizontalPodAutoscaler } from './hpa.ts';
import { serviceMonitor } from './servicemonitor.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';

const pool = (spec: Partial<RelayPoolSpec> = {}) => withDefaults(relayPool(spec)).resource;

test('Service by pool spec', async (t) => {
  const cases: {
    name: string;
    spec: Partial<RelayPoolSpec>;
    type: string;
    ports: string[];
    ranges?: string[];
    annotation?: string;
  }[] = [
    { name: 'ClusterIP with smtp and metrics', spec: {}, type: 'ClusterIP', ports: ['smtp:25', 'http:8080'] },
    {
      name: 'LoadBalancer with annotations and source ranges',
      spec: {
        service: {
          type: 'LoadBalancer',
          annotations: { 'lb/x': 'y' },
          loadBalancerSourceRanges: ['192.0.2.0/24'],
        },
        listeners: { smtps: { enabled: true } },
        tls: { secretName: 't' },
      },
      type: 'LoadBalancer',
      ports: ['smtp:25', 'smtps:465', 'http:8080'],
      ranges: ['192.0.2.0/24'],
      annotation: 'y',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const svc = service(pool(c.spec));
      assert.equal(svc.spec?.type, c.type);
      assert.deepEqual(
        svc.spec?.ports?.map((p) => `${p.name}:${p.port}`),
        c.ports,
      );
      assert.deepEqual(svc.spec?.loadBalancerSourceRanges, c.ranges);
      assert.equal(svc.metadata?.annotations?.['lb/x'], c.annotation);
      assert.deepEqual(svc.spec?.selector, {
        'app.kubernetes.io/name': 'mailfleet-relay',
        'app.kubernetes.io/instance': 'transactional',
      });
    });
  }
});

test('headless Service and endpoint', () => {
  const h = headlessService(pool());
  assert.equal(h.spec?.clusterIP, 'None');
  assert.equal(h.metadata?.name, 'transactional-headless');
  // Lists starting and draining relays too: the handoff hello tells them apart.
  assert.equal(h.spec?.publishNotReadyAddresses, true);
  assert.ok(h.spec?.ports?.some((p) => p.name === 'handoff' && p.port === 2526));
  assert.deepEqual(endpoint(pool()), { host: 'transactional.mail.svc', ports: [{ name: 'smtp', port: 25 }] });
});

test('PodDisruptionBudget allows one relay down at a time', () => {
  assert.equal(podDisruptionBudget(pool()).spec?.maxUnavailable, 1);
});

test('HPA only with autoscaling, targeting the RelayPool', () => {
  assert.equal(horizontalPodAutoscaler(pool()), undefined);
  const hpa = horizontalPodAutoscaler(pool({ autoscaling: { maxReplicas: 9 } }));
  assert.deepEqual(hpa?.spec?.scaleTargetRef, {
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    name: 'transactional',
  });
  assert.equal(hpa?.spec?.minReplicas, 2);
  assert.equal(hpa?.spec?.maxReplicas, 9);
  assert.equal(hpa?.spec?.metrics?.[0]?.resource?.target.averageUtilization, 70);
});

test('ServiceMonitor only when asked for and the CRD exists', async (t) => {
  const cases = [
    { name: 'not asked', spec: {}, crd: true, present: false },
    { name: 'asked, CRD absent', spec: { monitoring: { serviceMonitor: true } }, crd: false, present: false },
    {
      name: 'asked, CRD present',
      spec: { monitoring: { serviceMonitor: true, labels: { release: 'prom' } } },
      crd: true,
      present: true,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const sm = serviceMonitor(pool(c.spec), c.crd);
      assert.equal(sm !== undefined, c.present);
      if (sm) {
        assert.equal(sm.metadata?.labels?.release, 'prom');
        const [endpoint] = sm.spec.endpoints as Record<string, unknown>[];
        assert.equal(endpoint?.port, 'http');
        assert.equal(endpoint?.interval, '30s');
      }
    });
  }
});
