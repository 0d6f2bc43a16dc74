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
// A tracker's series carry its pool as `tracker_pool`, not `pool`: `pool` marks relay targets
// (the MailfleetRelayDown alert and the fleet dashboard count `up{pool!=""}` as relays).
const relabelings = (component: 'relay' | 'tracker') => [
  { sourceLabels: [podLabelMeta(POOL_LABEL)], targetLabel: component === 'relay' ? 'pool' : 'tracker_pool' },
  { sourceLabels: ['__meta_kubernetes_namespace'], targetLabel: 'namespace' },
];

/**
 * The relays' ServiceMonitor, or with component 'tracker' the tracker's (its opens and clicks feed
 * the sending-domain dashboard's rates): each selects the Service of its component only.
 */
export function serviceMonitor(
  pool: DefaultedRelayPool,
  crdInstalled: boolean,
  component: 'relay' | 'tracker' = 'relay',
): ServiceMonitor | undefined {
  const monitoring = pool.spec.monitoring;
  if (!monitoring.serviceMonitor || !crdInstalled) return undefined;
  const poolName = pool.metadata.name ?? '';
  const name = component === 'relay' ? names.service(poolName) : names.tracker(poolName);
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: childMeta(pool, name, component, { labels: { ...monitoring.labels } }),
    spec: {
      selector: { matchLabels: { ...selectorLabels(poolName), 'app.kubernetes.io/component': component } },
      endpoints: [
        {
          port: 'http',
          path: '/metrics',
          interval: monitoring.interval,
          relabelings: relabelings(component),
        },
      ],
    },
  };
}
