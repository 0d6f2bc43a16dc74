// A prometheus-operator ServiceMonitor, only when asked for and when its CRD exists.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { POOL_LABEL, childMeta, names, selectorLabels } from './meta.ts';

export type ServiceMonitor = KubernetesObject & { spec: Record<string, unknown> };

/** Prometheus' meta label for a pod label: every character outside [a-zA-Z0-9_] becomes '_'. */
export const podLabelMeta = (label: string) =>
  `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, '_')}`;

// Dashboards and alerts group relay series by `pool` and `namespace` (docs/observability.md): the
// pool comes from the relay pod's label, the namespace from the target's.
const RELABELINGS = [
  { sourceLabels: [podLabelMeta(POOL_LABEL)], targetLabel: 'pool' },
  { sourceLabels: ['__meta_kubernetes_namespace'], targetLabel: 'namespace' },
];

export function serviceMonitor(pool: DefaultedRelayPool, crdInstalled: boolean): ServiceMonitor | undefined {
  const monitoring = pool.spec.monitoring;
  if (!monitoring.serviceMonitor || !crdInstalled) return undefined;
  const poolName = pool.metadata.name ?? '';
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: childMeta(pool, names.service(poolName), 'relay', { labels: { ...monitoring.labels } }),
    spec: {
      selector: { matchLabels: { ...selectorLabels(poolName), 'app.kubernetes.io/component': 'relay' } },
      endpoints: [
        {
          port: 'http',
          path: '/metrics',
          interval: monitoring.interval,
          relabelings: RELABELINGS.map((r) => ({ ...r, sourceLabels: [...r.sourceLabels] })),
        },
      ],
    },
  };
}
