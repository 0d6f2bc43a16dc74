// Small builders of operator inputs for unit tests: relayPool({ replicas: 3 }) and friends.
import { generateKeyPairSync } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type {
  RateLimit,
  RateLimitSpec,
  RelayPool,
  RelayPoolSpec,
  SendingDomain,
  SendingDomainSpec,
} from '../../../operator/src/api/types.ts';
import type { Generators, KubeObject, Observed } from '../../../operator/src/desired/types.ts';
import { withAppliedHash } from '../../../operator/src/kube/diff.ts';

export const NS = 'mail';
export const NOW = new Date('2026-01-02T03:04:05.000Z');

export function relayPool(spec: Partial<RelayPoolSpec> = {}, name = 'transactional'): RelayPool {
  return {
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    metadata: { name, namespace: NS, uid: `uid-${name}`, generation: 1 },
    spec: { ...spec },
  };
}

export function sendingDomain(
  domain: string,
  spec: Partial<SendingDomainSpec> = {},
  meta: { name?: string; created?: string } = {},
): SendingDomain {
  const name = meta.name ?? domain.replace(/\./g, '-');
  return {
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'SendingDomain',
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      generation: 1,
      creationTimestamp: (meta.created ?? '2026-01-01T00:00:00Z') as never,
    },
    spec: { domain, poolRef: { name: 'transactional' }, ...spec },
  };
}

export function rateLimit(name: string, spec: Partial<RateLimitSpec> = {}): RateLimit {
  return {
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RateLimit',
    metadata: { name, namespace: NS, uid: `uid-${name}`, generation: 1 },
    spec: { poolRef: { name: 'transactional' }, ...spec },
  };
}

export function secret(
  name: string,
  data: Record<string, string>,
  annotations?: Record<string, string>,
): V1Secret {
  const encoded = Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  );
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS, annotations }, data: encoded };
}

/**
 * A relay workload as cached, with its status. `applied`: the desired workload of a pass, as the
 * reconcile applies it (with its applied-hash annotation); without it the workload carries no hash.
 */
export function workload(
  kind: 'Deployment' | 'StatefulSet',
  ready: number,
  replicas = ready,
  name = 'transactional',
  o: { applied?: KubeObject; updated?: number; observedGeneration?: number } = {},
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: {
      name,
      namespace: NS,
      generation: 2,
      ...(o.applied ? { annotations: withAppliedHash(o.applied).metadata?.annotations } : {}),
    },
    status: {
      replicas,
      readyReplicas: ready,
      updatedReplicas: o.updated ?? replicas,
      observedGeneration: o.observedGeneration ?? 2,
    },
  };
}

let keys: Record<string, string> | undefined;
/** Real keys (generated once per process): the DNS record code derives public keys from them. */
export function testKeys(): Record<string, string> {
  keys ??= {
    'rsa-sha256': generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
    'ed25519-sha256': generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
  };
  return keys;
}

export function fakeGenerators(): Generators & { generated: string[] } {
  const generated: string[] = [];
  return {
    generated,
    password: () => {
      generated.push('password');
      return 'generated-password';
    },
    hashPassword: (password) => `$hash$${password}`,
    dkimKey: (algorithm) => {
      generated.push(algorithm);
      return testKeys()[algorithm] ?? '';
    },
  };
}

export function observed(o: Partial<Observed> = {}): Observed {
  return {
    namespace: NS,
    poolName: 'transactional',
    domains: [],
    rateLimits: [],
    secrets: new Map(),
    children: [],
    serviceMonitorCRD: false,
    bounce: new Map(),
    dns: new Map(),
    settings: { image: 'mailfleet:test' },
    now: NOW,
    ...o,
  };
}

/** The pool's management tokens Secret as the operator generated it (values overridable). */
export function adminTokens(
  data: Record<string, string> = { read: 'read-token-0123456789', admin: 'admin-token-0123456789' },
  pool = 'transactional',
): V1Secret {
  return secret(`${pool}-admin-tokens`, data);
}

export function secrets(...list: V1Secret[]): Map<string, V1Secret> {
  return new Map(list.map((s) => [s.metadata?.name ?? '', s]));
}
