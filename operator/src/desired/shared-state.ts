// spec.sharedState in the pool's objects: the relay config's sharedState (one key prefix per
// pool), the projected Secret volume source with the password, the store's port for egress; and
// in its status, whether the relays reach the store (SharedStateAvailable).
import type { V1VolumeProjection } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { cond, type ConditionInput } from '../api/conditions.ts';
import type { RelayQueue } from './deletion.ts';
import type { SharedStateConfig } from '../../../contract/config.ts';
import { SHARED_STATE_PASSWORD_FILE } from '../../../contract/layout.ts';

type SharedState = NonNullable<DefaultedRelayPool['spec']['sharedState']>;

/** The relay config's sharedState; undefined without spec.sharedState. */
export function sharedStateConfig(pool: DefaultedRelayPool): SharedStateConfig | undefined {
  const s = pool.spec.sharedState;
  if (!s) return undefined;
  return {
    url: s.url,
    keyPrefix: `mailfleet:${pool.metadata.namespace ?? ''}/${pool.metadata.name ?? ''}:`,
    ...(s.passwordSecretRef ? { passwordFile: SHARED_STATE_PASSWORD_FILE } : {}),
  };
}

/** The password Secret as a source of the relay's projected config volume. */
export function sharedStatePasswordSource(pool: DefaultedRelayPool): V1VolumeProjection | undefined {
  const ref = pool.spec.sharedState?.passwordSecretRef;
  if (!ref) return undefined;
  return {
    secret: { name: ref.name, items: [{ key: ref.key ?? 'password', path: SHARED_STATE_PASSWORD_FILE }] },
  };
}

/**
 * The TCP port the relays dial the store on (6379 unless the URL names one). A URL the API's pattern
 * let through but WHATWG URL parsing refuses (a port over 65535, say) must not make desiredState
 * throw: the default port is opened, and the relays report the store unreachable.
 */
export function sharedStatePort(state: SharedState): number {
  if (!URL.canParse(state.url)) return 6379;
  const port = new URL(state.url).port;
  return port ? Number(port) : 6379;
}

/** The reason of a pool without spec.sharedState: the user's choice, never news (no Event). */
export const SHARED_STATE_NOT_CONFIGURED = 'NotConfigured';

/**
 * SharedStateAvailable, from what the relays' metrics said at their last scrape: True when every
 * relay scraped reaches the store, False naming those that do not (they decide on local state:
 * mail flows, suppression changes wait in their outbox, RateLimits fall back to their share),
 * Unknown before any relay was scraped. Without spec.sharedState, False NotConfigured saying what
 * each relay then keeps to itself (issue 19: without a store the pool says so in status).
 */
export function sharedStateCondition(
  pool: DefaultedRelayPool,
  relays: readonly RelayQueue[] | undefined,
): ConditionInput {
  if (!pool.spec.sharedState)
    return cond(
      'SharedStateAvailable',
      'False',
      SHARED_STATE_NOT_CONFIGURED,
      'no spec.sharedState: each relay keeps its own suppression list and delivery backoff, and enforces its share of Pool-scoped RateLimits',
    );
  const seen = (relays ?? []).filter((r) => r.sharedStateUp !== undefined);
  if (seen.length === 0)
    return cond(
      'SharedStateAvailable',
      'Unknown',
      'NotScraped',
      'no relay has reported on the shared store yet',
    );
  const down = seen.filter((r) => !r.sharedStateUp).map((r) => r.pod);
  if (down.length === 0)
    return cond(
      'SharedStateAvailable',
      'True',
      'Connected',
      `${seen.length} of ${seen.length} relays reach the shared store`,
    );
  return cond(
    'SharedStateAvailable',
    'False',
    'StoreUnreachable',
    `${down.length} of ${seen.length} relays do not reach the shared store (${down.sort().join(', ')}): they decide on local state; mail flows, suppression changes wait in their outbox, pool-wide RateLimits fall back to each relay's share`,
  );
}
