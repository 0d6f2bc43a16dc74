// Secrets the operator writes: generated plain credentials (for applications), the relay Secret
// (hashed users, DKIM keys, smarthost credentials: everything the relay reads besides its config
// and the TLS Secret), and generated DKIM keys (owned by their SendingDomain). Pure.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { RelayPool, SendingDomain } from '../api/types.ts';
import { stringify } from 'yaml';
import {
  DOMAIN_LABEL,
  FIELD_MANAGER,
  HANDOFF_SECRET_KEY,
  MANAGED_BY,
  SOURCE_CHECKSUM,
  childMeta,
  names,
  ownerReference,
  relaySecretKeys,
} from './meta.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export const DKIM_KEY = 'dkim.key';

export type CredentialsOptions = {
  pool: RelayPool;
  username: string;
  password: string;
  host: string;
  port: number;
};

/** The generated SMTP login, in plain form: created once, never rewritten by the operator. */
export function credentialsSecret(o: CredentialsOptions): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(o.pool, names.credentials(o.pool.metadata.name ?? ''), 'credentials'),
    type: 'Opaque',
    data: {
      username: b64(o.username),
      password: b64(o.password),
      host: b64(o.host),
      port: b64(String(o.port)),
    },
  };
}

/**
 * The secret the pool's relays sign handoff requests and replies with (relay handoff/auth.ts):
 * created once, never rewritten, so relays of every generation of a rollout share it.
 */
export function handoffSecret(pool: RelayPool, secret: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(pool, names.handoffSecret(pool.metadata.name ?? ''), 'handoff'),
    type: 'Opaque',
    data: { [HANDOFF_SECRET_KEY]: b64(secret) },
  };
}

/**
 * Bearer tokens of the relays' management API: created once, never rewritten by the operator, so a
 * user rotates them by editing the values (or deleting the Secret to have new ones generated).
 */
export function adminTokensSecret(pool: RelayPool, tokens: { read: string; admin: string }): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(pool, names.adminTokens(pool.metadata.name ?? ''), 'admin-tokens'),
    type: 'Opaque',
    data: { read: b64(tokens.read), admin: b64(tokens.admin) },
  };
}

/** A stable digest of plain users, so the hashes are recomputed only when a password changes. */
export function usersChecksum(users: Record<string, string>): string {
  const sorted = Object.keys(users)
    .sort()
    .map((u) => [u, users[u]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

export type RelaySecretOptions = {
  pool: RelayPool;
  /** username -> password hash, with the checksum of the plain users it was made from. */
  users?: { hashes: Record<string, string>; checksum: string };
  smarthost?: { username: string; password: string };
  dkimKeys: { domain: string; selector: string; pem: string }[];
};

export function relaySecret(o: RelaySecretOptions): V1Secret {
  const data: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  if (o.users) {
    const lines = Object.keys(o.users.hashes)
      .sort()
      .map((u) => `${u}:${o.users?.hashes[u]}\n`);
    data[relaySecretKeys.users] = b64(lines.join(''));
    annotations[SOURCE_CHECKSUM] = o.users.checksum;
  }
  if (o.smarthost) data[relaySecretKeys.smarthost] = b64(stringify(o.smarthost));
  for (const key of o.dkimKeys) data[relaySecretKeys.dkim(key.domain, key.selector)] = b64(key.pem);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(o.pool, names.relaySecret(o.pool.metadata.name ?? ''), 'relay-secrets', {
      annotations,
    }),
    type: 'Opaque',
    data,
  };
}

/** A generated DKIM private key, owned by its SendingDomain (not by the pool: it outlives pool
 * changes and is never pruned; a new selector gets a new Secret beside the old one). */
export function dkimKeySecret(domain: SendingDomain, selector: string, pem: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: names.dkimKey(domain.metadata.name ?? '', selector),
      namespace: domain.metadata.namespace ?? '',
      labels: {
        [MANAGED_BY]: FIELD_MANAGER,
        [DOMAIN_LABEL]: domain.metadata.name ?? '',
        'app.kubernetes.io/component': 'dkim-key',
      },
      annotations: { 'mailfleet.dev/dkim-selector': selector, 'mailfleet.dev/domain': domain.spec.domain },
      ownerReferences: [ownerReference(domain)],
    },
    type: 'Opaque',
    data: { [DKIM_KEY]: b64(pem) },
  };
}

/** Reads one key of an observed Secret as text. */
export function secretText(secret: V1Secret | undefined, key: string): string | undefined {
  // Own keys only: a user may name a key "__proto__" or "constructor", which plain indexing would
  // resolve to Object.prototype members (found by test/reliability/operator-fuzz.test.ts).
  const data = secret?.data;
  if (!data || !Object.hasOwn(data, key)) return undefined;
  const value = data[key];
  return typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : undefined;
}
