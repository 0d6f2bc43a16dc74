// Only the listeners and the metrics port in; only DNS and SMTP (or the smarthost) out; the
// handoff port between relays of the same pool, both ways.
import type {
  V1NetworkPolicy,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
} from '@kubernetes/client-node';
import type { RelayPool } from '../api/types.ts';
import { HANDOFF_PORT, HTTP_PORT, childMeta, names, selectorLabels } from './meta.ts';
import { listenerPorts } from './pod.ts';

export function networkPolicy(pool: RelayPool): V1NetworkPolicy | undefined {
  if (!pool.spec.networkPolicy?.enabled) return undefined;
  const poolName = pool.metadata.name ?? '';
  const metricsFrom: V1NetworkPolicyPeer[] = [
    { podSelector: {} },
    ...(pool.spec.networkPolicy.metricsFrom ?? []).map((cidr) => ({ ipBlock: { cidr } })),
  ];
  const delivery = pool.spec.delivery ?? {};
  const smtpPorts =
    delivery.mode === 'Smarthost' && delivery.smarthost
      ? [delivery.smarthost.port ?? 587]
      : // Direct delivery to MX hosts on 25; 465/587 for submission upstreams.
        [25, 465, 587];
  const samePool: V1NetworkPolicyPeer[] = [{ podSelector: { matchLabels: selectorLabels(poolName) } }];
  const handoffPort = [{ protocol: 'TCP', port: HANDOFF_PORT as never }];
  const peerPorts = listenerPorts(pool).map((p) => p.port);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(pool, names.workload(poolName), 'relay'),
    spec: {
      podSelector: { matchLabels: selectorLabels(poolName) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { ports: listenerPorts(pool).map((p) => ({ protocol: 'TCP', port: p.port as never })) },
        // The wire name is `from`; the client library's model calls it `_from`.
        {
          from: metricsFrom,
          ports: [{ protocol: 'TCP', port: HTTP_PORT as never }],
        } as V1NetworkPolicyIngressRule,
        { from: samePool, ports: handoffPort } as V1NetworkPolicyIngressRule,
      ],
      egress: [
        {
          ports: [
            { protocol: 'UDP', port: 53 as never },
            { protocol: 'TCP', port: 53 as never },
          ],
        },
        {
          ports: [...new Set([...smtpPorts, ...peerPorts])].map((port) => ({
            protocol: 'TCP',
            port: port as never,
          })),
        },
        { to: samePool, ports: handoffPort },
      ],
    },
  };
}
