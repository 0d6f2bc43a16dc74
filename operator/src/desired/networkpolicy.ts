// On by default. In: the listeners from the client networks, the management port from the
// operator's and the monitoring namespaces (and listed CIDRs) only, the handoff port from relays of
// the same pool (and, while a pool being deleted hands its queue to this one, from its relays). Out:
// DNS, SMTP (or the smarthost), the handoff port to relays of the pool (and to the pool this one's
// queue goes to while it is deleted), the shared state store's port (spec.sharedState), the events
// webhook's port (spec.events).
import { sharedStatePort } from './shared-state.ts';
import { eventsPort } from './events.ts';
import type {
  V1NetworkPolicy,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
} from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { absorbPodLabels } from './absorb.ts';
import { trackerEvents } from './tracker-events.ts';
import { trackerSelector } from './tracker.ts';
import { HANDOFF_PORT, HTTP_PORT, RETURN_PATH_PORT, childMeta, names, selectorLabels } from './meta.ts';
import { listenerPorts } from './pod.ts';

export type NetworkPolicyOptions = {
  /** The pool with schema defaults applied. */
  pool: DefaultedRelayPool;
  /** The operator's namespace and its --monitoring-namespaces (every pool admits them). */
  managementNamespaces: string[];
  /** A domain of the pool has a return path: its listener port is open to everyone. */
  returnPath?: boolean;
  /** The pool this one's relays hand their queue to now (handoff-to.ts evacuatesInto). */
  handOffTo?: string;
  /** Pools whose relays hand their queue to this one's now: admitted to its handoff port. */
  handOffFrom?: string[];
};

const namespacePeer = (namespace: string): V1NetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
});

/**
 * Who may open an SMTP session: clientsFrom when set; else allowedNetworks when AUTH is off (no one
 * else could relay); undefined (anyone) when clients may authenticate, as they come from anywhere.
 */
function listenerSources(pool: DefaultedRelayPool): string[] | undefined {
  const spec = pool.spec;
  if (spec.networkPolicy?.clientsFrom?.length) return [...spec.networkPolicy.clientsFrom];
  if (spec.auth.mode === 'Disabled') return [...(spec.allowedNetworks ?? [])];
  return undefined;
}

export function networkPolicy(o: NetworkPolicyOptions): V1NetworkPolicy | undefined {
  const { pool } = o;
  if (!pool.spec.networkPolicy.enabled) return undefined;
  const poolName = pool.metadata.name ?? '';
  const namespaces = [
    ...new Set([...o.managementNamespaces, ...(pool.spec.networkPolicy?.managementNamespaces ?? [])]),
  ];
  const managementFrom: V1NetworkPolicyPeer[] = [
    ...namespaces.sort().map(namespacePeer),
    ...(pool.spec.networkPolicy?.metricsFrom ?? []).map((cidr) => ({ ipBlock: { cidr } })),
  ];
  const delivery = pool.spec.delivery;
  const smtpPorts =
    delivery.mode === 'Smarthost' && delivery.smarthost
      ? [delivery.smarthost.port]
      : // Direct delivery to MX hosts on 25; 465/587 for submission upstreams.
        [25, 465, 587];
  const samePool: V1NetworkPolicyPeer[] = [{ podSelector: { matchLabels: selectorLabels(poolName) } }];
  const handoffPort = [{ protocol: 'TCP', port: HANDOFF_PORT as never }];
  const peerPorts = listenerPorts(pool).map((p) => p.port);
  const listenerPortList = listenerPorts(pool).map((p) => ({ protocol: 'TCP', port: p.port as never }));
  const clients = listenerSources(pool);
  // A rule's `from` that is absent or empty admits everyone, so "no source" means no rule at all.
  // The wire name is `from`; the client library's model calls it `_from`.
  const ingress: V1NetworkPolicyIngressRule[] = [];
  if (clients === undefined) ingress.push({ ports: listenerPortList });
  else if (clients.length > 0)
    ingress.push({
      from: clients.map((cidr) => ({ ipBlock: { cidr } })),
      ports: listenerPortList,
    } as V1NetworkPolicyIngressRule);
  if (managementFrom.length > 0)
    ingress.push({
      from: managementFrom,
      ports: [{ protocol: 'TCP', port: HTTP_PORT as never }],
    } as V1NetworkPolicyIngressRule);
  // The relays of the pool, and the absorb Jobs emptying retained claims into them (absorb.ts).
  const absorbPods = { podSelector: { matchLabels: absorbPodLabels(poolName) } };
  // A pool being deleted that hands its queue to this one (spec.deletionHandOffTo), while it does.
  const evacuating = (o.handOffFrom ?? []).map((p) => ({ podSelector: { matchLabels: selectorLabels(p) } }));
  // The pool's tracker, when it sends events: a stopping tracker hands its unsent ones to a relay.
  const tracker = trackerEvents(pool) ? [{ podSelector: { matchLabels: trackerSelector(poolName) } }] : [];
  ingress.push({
    from: [...samePool, absorbPods, ...evacuating, ...tracker],
    ports: handoffPort,
  } as V1NetworkPolicyIngressRule);
  // The return-path domains' MX: bounces and complaints come from any mailbox provider.
  if (o.returnPath) ingress.push({ ports: [{ protocol: 'TCP', port: RETURN_PATH_PORT as never }] });
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMeta(pool, names.workload(poolName), 'relay'),
    spec: {
      podSelector: { matchLabels: selectorLabels(poolName) },
      policyTypes: ['Ingress', 'Egress'],
      ingress,
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
        ...(o.handOffTo
          ? [{ to: [{ podSelector: { matchLabels: selectorLabels(o.handOffTo) } }], ports: handoffPort }]
          : []),
        // spec.sharedState: the store may run anywhere (in the cluster or not), so any address.
        ...(pool.spec.sharedState
          ? [{ ports: [{ protocol: 'TCP', port: sharedStatePort(pool.spec.sharedState) as never }] }]
          : []),
        // spec.events: the webhook receiver, anywhere (a SaaS endpoint or a Service in the cluster).
        ...(pool.spec.events && eventsPort(pool.spec.events) !== undefined
          ? [{ ports: [{ protocol: 'TCP', port: eventsPort(pool.spec.events) as never }] }]
          : []),
      ],
    },
  };
}
