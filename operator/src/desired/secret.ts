// Secrets the operator writes: generated plain credentials (for applications), the relay Secret
// (hashed users, DKIM keys, smarthost credentials: everything the relay reads besides its config
// and the TLS Secret), and generated DKIM keys (owned by their SendingDomain). Pure.
import { createHmac } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { RelayPool, SendingDomain } from '../api/types.ts';
import { stringify } from 'yaml';
import {
  DOMAIN_LABEL,
  FIELD_MANAGER,
  HANDOFF_SECRET_KEY,
  MANAGED_BY,
  SOURCE_CHECKSUM,
  TRACKING_KEY_KEY,
  childMeta,
  names,
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
 * The key the pool's relays sign tracked links with (relay tracking/links.ts), and the tracker
 * verifies them with: created once, never rewritten, since links in delivered mail must keep
 * resolving.
 */
export function trackingKeySecret(pool: RelayPool, key: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(pool, names.trackingKey(pool.metadata.name ?? ''), 'tracking'),
    type: 'Opaque',
    data: { [TRACKING_KEY_KEY]: b64(key) },
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

/**
 * A stable digest of plain users, so the hashes are recomputed only when a password changes. It is
 * an HMAC under a random per-pool key kept in the relay Secret's data: the digest sits in an
 * annotation, and a plain SHA-256 of the passwords there would let anyone who sees annotations
 * guess weak passwords at SHA-256 speed instead of scrypt's.
 */
export function usersChecksum(users: Record<string, string>, key: string): string {
  const sorted = Object.keys(users)
    .sort()
    .map((u) => [u, users[u]]);
  return createHmac('sha256', key).update(JSON.stringify(sorted)).digest('hex');
}

export type RelaySecretOptions = {
  pool: RelayPool;
  /** username -> password hash, with the checksum of the plain users it was made from. */
  users?: { hashes: Record<string, string>; checksum: string; checksumKey: string };
  smarthost?: { username: string; password: string };
  dkimKeys: { domain: string; selector: string; pem: string }[];
};

/**
 * Bytes of data one relay Secret carries at most. The API server refuses objects over 1 MiB (etcd's
 * request limit), metadata and managedFields included: a pool's keys beyond this go to the next
 * shard. An RSA-2048 key is about 1.7 KB, so a shard holds some 500 of them.
 */
export const RELAY_SECRET_BUDGET = 900 * 1024;

/**
 * The relay Secret, split into as many shards as its data needs (all projected into the same
 * directory of the relay, so file names do not depend on the shard). Users and smarthost
 * credentials go first; DKIM keys follow in domain order, so adding a domain moves at most the keys
 * after it. `budget` is RELAY_SECRET_BUDGET but for tests.
 */
export function relaySecrets(o: RelaySecretOptions, budget = RELAY_SECRET_BUDGET): V1Secret[] {
  const pool = o.pool.metadata.name ?? '';
  const annotations: Record<string, string> = {};
  const entries: [string, string][] = [];
  if (o.users) {
    const lines = Object.keys(o.users.hashes)
      .sort()
      .map((u) => `${u}:${o.users?.hashes[u]}\n`);
    entries.push([relaySecretKeys.users, lines.join('')]);
    entries.push([relaySecretKeys.usersChecksumKey, o.users.checksumKey]);
    annotations[SOURCE_CHECKSUM] = o.users.checksum;
  }
  if (o.smarthost) entries.push([relaySecretKeys.smarthost, stringify(o.smarthost)]);
  const keys = [...o.dkimKeys].sort((a, b) =>
    `${a.domain}/${a.selector}`.localeCompare(`${b.domain}/${b.selector}`),
  );
  for (const key of keys) entries.push([relaySecretKeys.dkim(key.domain, key.selector), key.pem]);
  const shards: Record<string, string>[] = [{}];
  let used = 0;
  for (const [name, text] of entries) {
    const size = Buffer.byteLength(name) + Buffer.byteLength(text);
    if (used > 0 && used + size > budget) {
      shards.push({});
      used = 0;
    }
    shards[shards.length - 1]![name] = b64(text);
    used += size;
  }
  return shards.map((data, index) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(
      o.pool,
      names.relaySecretShard(pool, index),
      'relay-secrets',
      index === 0 ? { annotations } : {},
    ),
    type: 'Opaque',
    data,
  }));
}

/**
 * A generated DKIM private key. Owned by nothing: it outlives its pool and its SendingDomain, so a
 * domain deleted and applied again from Git finds its key and its published record still valid
 * (an owner reference would have the garbage collector delete the key with the domain, and the
 * domain come back signing with a new key nobody published). It is never pruned; a new selector
 * gets a new Secret beside the old one. Delete it by hand to discard the key.
 */
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
