// The pool as a StatefulSet when queue.persistence is set: one PVC per relay keeps its spool
// across restarts and rescheduling.
import type { V1PersistentVolumeClaim, V1StatefulSet } from '@kubernetes/client-node';
import { childMeta, names, selectorLabels } from './meta.ts';
import { SPOOL_VOLUME, podTemplate } from './pod.ts';
import type { PodOptions } from './pod.ts';

export function statefulSet(o: Omit<PodOptions, 'persistentSpool'>): V1StatefulSet {
  const poolName = o.pool.metadata.name ?? '';
  const persistence = o.pool.spec.queue?.persistence;
  const claim: V1PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: SPOOL_VOLUME, labels: selectorLabels(poolName) },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: String(persistence?.size ?? '1Gi') } },
    },
  };
  if (persistence?.storageClassName && claim.spec) claim.spec.storageClassName = persistence.storageClassName;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: childMeta(o.pool, names.workload(poolName), 'relay'),
    spec: {
      replicas: o.pool.spec.replicas,
      serviceName: names.headless(poolName),
      // Relays are independent peers: start and stop them all at once rather than one by one.
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: selectorLabels(poolName) },
      template: podTemplate({ ...o, persistentSpool: true }),
      volumeClaimTemplates: [claim],
    },
  };
}
