// An HPA that scales the RelayPool itself (through its scale subresource), so spec.replicas
// stays the single source of truth the operator renders the workload from.
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { childMeta, names } from './meta.ts';

export function horizontalPodAutoscaler(pool: DefaultedRelayPool): V2HorizontalPodAutoscaler | undefined {
  const autoscaling = pool.spec.autoscaling;
  if (!autoscaling) return undefined;
  const poolName = pool.metadata.name ?? '';
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: childMeta(pool, names.workload(poolName), 'relay'),
    spec: {
      scaleTargetRef: { apiVersion: pool.apiVersion, kind: pool.kind, name: poolName },
      minReplicas: autoscaling.minReplicas,
      maxReplicas: autoscaling.maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: {
            name: 'cpu',
            target: {
              type: 'Utilization',
              averageUtilization: autoscaling.targetCPUUtilizationPercentage,
            },
          },
        },
      ],
    },
  };
}
