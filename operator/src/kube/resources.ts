// Where each kind lives in the API: the one table that maps kinds to URL paths.
export type Resource = { prefix: string; plural: string; namespaced: boolean };

const resources: Record<string, Resource> = {
  ConfigMap: { prefix: '/api/v1', plural: 'configmaps', namespaced: true },
  Secret: { prefix: '/api/v1', plural: 'secrets', namespaced: true },
  Service: { prefix: '/api/v1', plural: 'services', namespaced: true },
  Pod: { prefix: '/api/v1', plural: 'pods', namespaced: true },
  PersistentVolumeClaim: { prefix: '/api/v1', plural: 'persistentvolumeclaims', namespaced: true },
  Event: { prefix: '/api/v1', plural: 'events', namespaced: true },
  Deployment: { prefix: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  StatefulSet: { prefix: '/apis/apps/v1', plural: 'statefulsets', namespaced: true },
  Job: { prefix: '/apis/batch/v1', plural: 'jobs', namespaced: true },
  PodDisruptionBudget: { prefix: '/apis/policy/v1', plural: 'poddisruptionbudgets', namespaced: true },
  HorizontalPodAutoscaler: {
    prefix: '/apis/autoscaling/v2',
    plural: 'horizontalpodautoscalers',
    namespaced: true,
  },
  NetworkPolicy: { prefix: '/apis/networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true },
  ServiceMonitor: { prefix: '/apis/monitoring.coreos.com/v1', plural: 'servicemonitors', namespaced: true },
  Certificate: { prefix: '/apis/cert-manager.io/v1', plural: 'certificates', namespaced: true },
  Lease: { prefix: '/apis/coordination.k8s.io/v1', plural: 'leases', namespaced: true },
  RelayPool: { prefix: '/apis/mailfleet.dev/v1alpha1', plural: 'relaypools', namespaced: true },
  SendingDomain: { prefix: '/apis/mailfleet.dev/v1alpha1', plural: 'sendingdomains', namespaced: true },
  RateLimit: { prefix: '/apis/mailfleet.dev/v1alpha1', plural: 'ratelimits', namespaced: true },
};

/** Collection path of a kind, in one namespace or (namespace undefined) across all. */
export function collectionPath(kind: string, namespace?: string): string {
  const r = resources[kind];
  if (!r) throw new Error(`unknown kind ${kind}`);
  return namespace ? `${r.prefix}/namespaces/${namespace}/${r.plural}` : `${r.prefix}/${r.plural}`;
}

export function objectPath(kind: string, namespace: string, name: string): string {
  return `${collectionPath(kind, namespace)}/${encodeURIComponent(name)}`;
}

/** Children kinds the operator owns and prunes (Secrets are pruned only if labelled for a pool). */
export const OWNED_KINDS = [
  'ConfigMap',
  'Secret',
  'Service',
  'Deployment',
  'StatefulSet',
  // Absorb Jobs of retained spool claims (desired/absorb.ts): created, never updated.
  'Job',
  'PodDisruptionBudget',
  'HorizontalPodAutoscaler',
  'NetworkPolicy',
  'ServiceMonitor',
  'Certificate',
] as const;
