// The Secrets a pool references (TLS aside: tls.ts), checked before anything is built: a missing or malformed one
// is a condition on the pool, never a crash. Pure.
import type { V1Secret } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import type { ConditionInput } from '../api/conditions.ts';
import { adminTokensSecret, credentialsSecret, handoffSecret, secretText, usersChecksum } from './secret.ts';
import { ADMIN_TOKEN_ROLES, HANDOFF_SECRET_KEY, SOURCE_CHECKSUM, names, relaySecretKeys } from './meta.ts';
import { adminTokenProblem } from '../../../contract/tokens.ts';
import { endpoint } from './service.ts';
import type { Generators, KubeObject, Observed } from './types.ts';

export type PoolInputs = {
  /** The first blocking problem: nothing new is applied while it lasts. */
  problem?: ConditionInput;
  users?: { hashes: Record<string, string>; checksum: string; checksumKey: string };
  smarthost?: { username: string; password: string };
  create: KubeObject[];
  /** Existing children that are still wanted though never applied (the generated credentials). */
  keep: string[];
  events: string[];
};

const blocked = (reason: string, message: string): ConditionInput => ({
  type: 'Ready',
  status: 'False',
  reason,
  message,
});

function plainUsers(secret: V1Secret): Record<string, string> {
  const users: Record<string, string> = {};
  for (const key of Object.keys(secret.data ?? {}).sort()) users[key] = secretText(secret, key) ?? '';
  return users;
}

/** Parses the users file of the relay Secret back into username -> hash. */
function existingHashes(secret: V1Secret | undefined): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const line of (secretText(secret, relaySecretKeys.users) ?? '').split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) hashes[line.slice(0, at)] = line.slice(at + 1);
  }
  return hashes;
}

const GENERATED_USER = 'relay';

export function poolInputs(pool: DefaultedRelayPool, observed: Observed, gen: Generators): PoolInputs {
  const spec = pool.spec;
  const poolName = pool.metadata.name ?? '';
  const out: PoolInputs = { create: [], keep: [], events: [] };
  const handoffName = names.handoffSecret(poolName);
  const handoff = observed.secrets.get(handoffName);
  if (handoff && (secretText(handoff, HANDOFF_SECRET_KEY) ?? '').length < 16)
    return {
      ...out,
      problem: blocked('SecretMalformed', `handoff Secret ${handoffName} lost its ${HANDOFF_SECRET_KEY} key`),
    };
  if (handoff) out.keep.push(`Secret/${handoffName}`);
  else out.create.push(handoffSecret(pool, gen.password()) as KubeObject);
  const tokensName = names.adminTokens(poolName);
  const tokens = observed.secrets.get(tokensName);
  if (tokens) {
    // The relays mount both keys: a missing one would stop new pods from starting, a bad one
    // would make every relay reject its reload. Either is the user's edit to fix.
    for (const role of ADMIN_TOKEN_ROLES) {
      const problem = adminTokenProblem((secretText(tokens, role) ?? '').trim());
      if (problem)
        return {
          ...out,
          problem: blocked('SecretMalformed', `admin tokens Secret ${tokensName}: ${role}: ${problem}`),
        };
    }
    out.keep.push(`Secret/${tokensName}`);
  } else {
    out.create.push(adminTokensSecret(pool, { read: gen.password(), admin: gen.password() }) as KubeObject);
    out.events.push(`generated management API tokens in Secret ${tokensName}`);
  }
  if (spec.auth.mode !== 'Disabled') {
    let users: Record<string, string>;
    const ref = spec.auth?.credentialsSecretRef;
    if (ref) {
      const secret = observed.secrets.get(ref.name);
      if (!secret)
        return { ...out, problem: blocked('SecretNotFound', `credentials Secret ${ref.name} not found`) };
      users = plainUsers(secret);
      if (Object.keys(users).length === 0) {
        return {
          ...out,
          problem: blocked('SecretMalformed', `credentials Secret ${ref.name} has no username keys`),
        };
      }
      const bad = Object.keys(users).find((u) => u.includes(':') || users[u] === '');
      if (bad)
        return {
          ...out,
          problem: blocked(
            'SecretMalformed',
            `credentials Secret ${ref.name}: user ${bad} has an empty password or a ':' in its name`,
          ),
        };
    } else {
      const name = names.credentials(poolName);
      const existing = observed.secrets.get(name);
      const username = secretText(existing, 'username');
      const password = secretText(existing, 'password');
      if (existing && (!username || !password)) {
        return {
          ...out,
          problem: blocked(
            'SecretMalformed',
            `generated credentials Secret ${name} lost its username or password keys`,
          ),
        };
      }
      if (username && password) {
        users = { [username]: password };
        out.keep.push(`Secret/${name}`);
      } else {
        const fresh = gen.password();
        users = { [GENERATED_USER]: fresh };
        const port = spec.listeners.submission.enabled
          ? spec.listeners.submission.port
          : spec.listeners.smtp.port;
        out.create.push(
          credentialsSecret({
            pool,
            username: GENERATED_USER,
            password: fresh,
            host: endpoint(pool).host,
            port,
          }) as KubeObject,
        );
        out.events.push(`generated SMTP credentials in Secret ${name}`);
      }
    }
    const relay = observed.secrets.get(names.relaySecret(poolName));
    const checksumKey = secretText(relay, relaySecretKeys.usersChecksumKey) ?? gen.password();
    const checksum = usersChecksum(users, checksumKey);
    // Hashing is salted: rehash only when a password changed, or the Secret would change every pass.
    if (relay?.metadata?.annotations?.[SOURCE_CHECKSUM] === checksum) {
      out.users = { hashes: existingHashes(relay), checksum, checksumKey };
    } else {
      const hashes: Record<string, string> = {};
      for (const [user, password] of Object.entries(users)) hashes[user] = gen.hashPassword(password);
      out.users = { hashes, checksum, checksumKey };
    }
  }
  const smarthostRef = spec.delivery?.smarthost?.credentialsSecretRef;
  if (smarthostRef) {
    const secret = observed.secrets.get(smarthostRef.name);
    if (!secret)
      return {
        ...out,
        problem: blocked('SecretNotFound', `smarthost credentials Secret ${smarthostRef.name} not found`),
      };
    const username = secretText(secret, 'username');
    const password = secretText(secret, 'password');
    if (!username || !password) {
      return {
        ...out,
        problem: blocked(
          'SecretMalformed',
          `smarthost credentials Secret ${smarthostRef.name} needs the keys username and password`,
        ),
      };
    }
    out.smarthost = { username, password };
  }
  return out;
}
