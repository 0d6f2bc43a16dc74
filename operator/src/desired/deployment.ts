// The pool as a Deployment: the spool is an emptyDir and a stopping relay hands its queue to peers.
import type { V1Deployment } from '@kubernetes/client-node';
import { childMeta, names, selectorLabels } from './meta.ts';
import { podTemplate } from './pod.ts';
import type { PodOptions } from './pod.ts';

export function deployment(o: Omit<PodOptions, 'persistentSpool'>): V1Deployment {
  const poolName = o.pool.metadata.name ?? '';
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMeta(o.pool, names.workload(poolName), 'relay'),
    spec: {
      replicas: o.pool.spec.replicas,
      selector: { matchLabels: selectorLabels(poolName) },
      // Never below the desired count while rolling: a relay is only replaced once a new one is ready.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: podTemplate({ ...o, persistentSpool: false }),
    },
  };
}
