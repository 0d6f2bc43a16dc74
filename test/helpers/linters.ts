// What the manifest linters are run on: the objects desiredState() applies for representative pools
// (Deployment mode, StatefulSet mode, autoscaling, NetworkPolicy), as one multi-document YAML each.
import { stringify } from 'yaml';
import { desiredState } from '../../operator/src/desired/state.ts';
import type { RelayPoolSpec } from '../../operator/src/api/types.ts';
import { fakeGenerators, observed, relayPool } from './operator/fixtures.ts';

export const REPRESENTATIVE_POOLS: { name: string; spec: Partial<RelayPoolSpec> }[] = [
  { name: 'Deployment mode (emptyDir spool), NetworkPolicy on by default', spec: { replicas: 2 } },
  {
    name: 'StatefulSet mode (a PVC per relay)',
    spec: { replicas: 3, queue: { persistence: { size: '5Gi' } } },
  },
  { name: 'autoscaling', spec: { autoscaling: { minReplicas: 2, maxReplicas: 10 } } },
  {
    name: 'NetworkPolicy with client networks, management namespaces and a metrics network',
    spec: {
      replicas: 2,
      networkPolicy: {
        enabled: true,
        clientsFrom: ['10.0.0.0/8'],
        managementNamespaces: ['monitoring'],
        metricsFrom: ['192.168.0.0/16'],
      },
    },
  },
];

/** The objects the operator writes for a pool (applied and created), as multi-document YAML. */
export function desiredManifests(spec: Partial<RelayPoolSpec>): string {
  const d = desiredState(observed({ pool: relayPool(spec) }), fakeGenerators());
  return [...d.apply, ...d.create].map((o) => stringify(o)).join('---\n');
}
