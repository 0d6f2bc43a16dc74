// The Service applications use (enabled listeners + metrics) and the headless Service that lists
// every relay of the pool: handoff peers (relay handoff.service) and, for a StatefulSet, each
// relay's stable DNS name.
import type { V1Service } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { HANDOFF_PORT, HTTP_PORT, childMeta, names, selectorLabels } from './meta.ts';
import { listenerPorts } from './pod.ts';

function ports(pool: DefaultedRelayPool) {
  return [
    ...listenerPorts(pool).map((p) => ({ name: p.name, port: p.port, targetPort: p.name, protocol: 'TCP' })),
    { name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' },
  ];
}

export function service(pool: DefaultedRelayPool): V1Service {
  const poolName = pool.metadata.name ?? '';
  const spec = pool.spec.service;
  const type = spec.type;
  const svc: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(pool, names.service(poolName), 'relay', { annotations: { ...spec.annotations } }),
    spec: { type, selector: selectorLabels(poolName), ports: ports(pool) },
  };
  if (type === 'LoadBalancer' && svc.spec) {
    // Keeps the client source IP, which allowedNetworks decisions depend on.
    svc.spec.externalTrafficPolicy = 'Local';
    if (spec.loadBalancerSourceRanges?.length)
      svc.spec.loadBalancerSourceRanges = [...spec.loadBalancerSourceRanges];
  }
  return svc;
}

export function headlessService(pool: DefaultedRelayPool): V1Service {
  const poolName = pool.metadata.name ?? '';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(pool, names.headless(poolName), 'relay-peers'),
    spec: {
      clusterIP: 'None',
      // Not-ready relays too: a draining relay asks each one (signed hello) and skips those that
      // drain themselves or do not answer yet.
      publishNotReadyAddresses: true,
      selector: selectorLabels(poolName),
      ports: [
        ...ports(pool),
        { name: 'handoff', port: HANDOFF_PORT, targetPort: 'handoff', protocol: 'TCP' },
      ],
    },
  };
}

/** The DNS name and ports reported in status.endpoint. */
export function endpoint(pool: DefaultedRelayPool): {
  host: string;
  ports: { name: string; port: number }[];
} {
  return {
    host: `${names.service(pool.metadata.name ?? '')}.${pool.metadata.namespace ?? ''}.svc`,
    ports: listenerPorts(pool),
  };
}
