// How reconciles find a pool's objects in the informer caches without scanning them: every cached
// object is filed under the keys below (its pool, and for DKIM key Secrets its SendingDomain).
import { DOMAIN_LABEL, INSTANCE_LABEL, POOL_LABEL } from '../desired/meta.ts';
import type { KubeObject } from '../desired/types.ts';
import type { RelayPool, SendingDomain } from '../api/types.ts';
import { referencedTlsSecret } from '../desired/tls.ts';

export const poolIndexKey = (namespace: string, pool: string) => `pool:${namespace}/${pool}`;
export const domainIndexKey = (namespace: string, domain: string) => `domain:${namespace}/${domain}`;
/** RelayPools whose spec.deletionHandOffTo names `pool`. */
export const handOffIndexKey = (namespace: string, pool: string) => `handoff-to:${namespace}/${pool}`;

/** The index keys of one object of a kind: pure. */
export function indexKeys(kind: string, object: KubeObject): string[] {
  const namespace = object.metadata?.namespace ?? '';
  if (kind === 'SendingDomain' || kind === 'RateLimit') {
    const pool = (object as { spec?: { poolRef?: { name?: string } } }).spec?.poolRef?.name;
    return pool ? [poolIndexKey(namespace, pool)] : [];
  }
  if (kind === 'RelayPool') {
    const target = (object as { spec?: { deletionHandOffTo?: string } }).spec?.deletionHandOffTo;
    return target ? [handOffIndexKey(namespace, target)] : [];
  }
  const labels = object.metadata?.labels ?? {};
  const keys: string[] = [];
  // A StatefulSet's claims carry its claim template's labels, the pool's selector labels.
  const pool = kind === 'PersistentVolumeClaim' ? labels[INSTANCE_LABEL] : labels[POOL_LABEL];
  if (pool) keys.push(poolIndexKey(namespace, pool));
  const domain = labels[DOMAIN_LABEL];
  if (domain) keys.push(domainIndexKey(namespace, domain));
  return keys;
}

/** Read access to the caches, as a reconcile needs it. */
export type Lookup = {
  get(kind: string, namespace: string, name: string): KubeObject | undefined;
  /** Objects of a kind filed under an index key (poolIndexKey, domainIndexKey). */
  indexed(kind: string, key: string): KubeObject[];
};

/** A Lookup over plain lists (tests, and anything that holds objects outside an informer). */
export function listLookup(objects: Record<string, KubeObject[]>): Lookup {
  return {
    get: (kind, namespace, name) =>
      (objects[kind] ?? []).find(
        (o) => (o.metadata?.namespace ?? '') === namespace && o.metadata?.name === name,
      ),
    indexed: (kind, key) => (objects[kind] ?? []).filter((o) => indexKeys(kind, o).includes(key)),
  };
}

/** Names of the Secrets a RelayPool's spec names or expects from others (TLS: its own or cert-manager's;
 * SMTP credentials, smarthost credentials). */
export function poolSecretRefs(pool: RelayPool | undefined): string[] {
  const spec = pool?.spec;
  return [
    referencedTlsSecret(pool),
    spec?.auth?.credentialsSecretRef?.name,
    spec?.delivery?.smarthost?.credentialsSecretRef?.name,
  ].filter((r): r is string => !!r);
}

/** Names of the Secrets a SendingDomain's spec names (its DKIM key). */
export function domainSecretRefs(domain: SendingDomain | undefined): string[] {
  const name = domain?.spec?.dkim?.keySecretRef?.name;
  return name ? [name] : [];
}

/**
 * Which pools name which Secrets (through the pool's own spec or one of its domains'), so an edit to
 * an unlabelled Secret reaches exactly the pools that use it. Each source (a pool or a domain) is
 * noted with the Secrets its current spec names; noting it again replaces what it named before, so a
 * Secret a spec stopped naming no longer leads to the pool.
 */
export class SecretReferences {
  /** "Kind/namespace/name" of a pool or domain -> its pool key and the Secrets ("ns/name") it names. */
  readonly #sources = new Map<string, { pool: string; secrets: string[] }>();
  /** "namespace/secret" -> pool keys; undefined when a source changed since it was built. */
  #index: Map<string, Set<string>> | undefined;

  /** Records what a source names now (no Secrets, or `pool` undefined: it names nothing). */
  note(source: string, pool: string | undefined, secrets: string[]): void {
    const names = pool ? secrets : [];
    const old = this.#sources.get(source);
    if (!old && names.length === 0) return;
    if (old && old.pool === pool && old.secrets.join() === names.join()) return;
    if (pool && names.length) this.#sources.set(source, { pool, secrets: names });
    else this.#sources.delete(source);
    this.#index = undefined;
  }

  /** Pool keys whose pool or domains name this Secret. */
  pools(secret: string): string[] {
    if (!this.#index) {
      const index = new Map<string, Set<string>>();
      for (const { pool, secrets } of this.#sources.values())
        for (const name of secrets) index.set(name, (index.get(name) ?? new Set()).add(pool));
      this.#index = index;
    }
    return [...(this.#index.get(secret) ?? [])];
  }
}
