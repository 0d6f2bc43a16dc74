// StatefulSet pools keep each relay's spool on a PVC `spool-<pool>-<ordinal>`. Scaling down leaves
// the claims of the removed ordinals (the StatefulSet's default retention): a relay that drained
// handed its queue off and left its claim empty, but one killed without a drain (node loss,
// kill -9, a drain past its grace period) left its mail there. The operator cannot read a volume,
// so it reports every such claim until an absorb Job (absorb.ts) has emptied it into the pool.
import { names } from './meta.ts';
import { SPOOL_VOLUME } from './pod.ts';
import type { KubeObject } from './types.ts';

/** The ordinal of a spool claim of the pool (`spool-<pool>-<ordinal>`); undefined for any other name. */
export function claimOrdinal(poolName: string, claim: string): number | undefined {
  const prefix = `${SPOOL_VOLUME}-${names.workload(poolName)}-`;
  const rest = claim.slice(prefix.length);
  return claim.startsWith(prefix) && /^\d+$/.test(rest) ? Number(rest) : undefined;
}

/** The names of the pool's spool claims whose ordinal has no relay at `replicas`, sorted by ordinal. */
export function retainedClaims(poolName: string, replicas: number, claims: readonly KubeObject[]): string[] {
  return claims
    .map((c) => c.metadata?.name ?? '')
    .map((name) => ({ name, ordinal: claimOrdinal(poolName, name) ?? -1 }))
    .filter((c) => c.ordinal >= 0 && c.ordinal >= replicas)
    .sort((a, b) => a.ordinal - b.ordinal)
    .map((c) => c.name);
}

export const RETAINED_CONDITION = 'QueueClaimsRetained';
