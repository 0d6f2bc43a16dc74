// At most one relay is evicted at a time: each relay holds queued mail it must drain or hand off.
// A relay that is not ready (a crash loop, a full spool) may always be evicted: otherwise it would
// count against the budget and block every node drain, while its eviction still drains it.
import type { V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { childMeta, names, selectorLabels } from './meta.ts';

export function podDisruptionBudget(pool: DefaultedRelayPool): V1PodDisruptionBudget {
  const poolName = pool.metadata.name ?? '';
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMeta(pool, names.workload(poolName), 'relay'),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(poolName) },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}
