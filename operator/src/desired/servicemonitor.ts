// A prometheus-operator ServiceMonitor, only when asked for and when its CRD exists.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { RelayPool } from '../api/types.ts';
import { childMeta, names, selectorLabels } from './meta.ts';

export type ServiceMonitor = KubernetesObject & { spec: Record<string, unknown> };

export function serviceMonitor(pool: RelayPool, crdInstalled: boolean): ServiceMonitor | undefined {
  const monitoring = pool.spec.monitoring ?? {};
  if (!monitoring.serviceMonitor || !crdInstalled) return undefined;
  const poolName = pool.metadata.name ?? '';
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: childMeta(pool, names.service(poolName), 'relay', { labels: { ...monitoring.labels } }),
    spec: {
      selector: { matchLabels: { ...selectorLabels(poolName), 'app.kubernetes.io/component': 'relay' } },
      endpoints: [{ port: 'http', path: '/metrics', interval: monitoring.interval ?? '30s' }],
    },
  };
}
