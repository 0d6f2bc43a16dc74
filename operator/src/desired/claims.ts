// StatefulSet pools keep each relay's spool on a PVC `spool-<pool>-<ordinal>`. Scaling down leaves
// the claims of the removed ordinals (the StatefulSet's default retention): a relay that drained
// handed its queue off and left its claim empty, but one killed without a drain (node loss,
// kill -9, a drain past its grace period) left its mail there. The operator cannot read a volume,
// so it reports every such claim; scaling up again starts a relay on it, which delivers the rest.
import { names } from './meta.ts';
import { SPOOL_VOLUME } from './pod.ts';
import type { KubeObject } from './types.ts';

/** The names of the pool's spool claims whose ordinal has no relay at `replicas`, sorted by ordinal. */
export function retainedClaims(poolName: string, replicas: number, claims: readonly KubeObject[]): string[] {
  const prefix = `${SPOOL_VOLUME}-${names.workload(poolName)}-`;
  return claims
    .map((c) => c.metadata?.name ?? '')
    .filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)))
    .map((name) => ({ name, ordinal: Number(name.slice(prefix.length)) }))
    .filter((c) => c.ordinal >= replicas)
    .sort((a, b) => a.ordinal - b.ordinal)
    .map((c) => c.name);
}

export const RETAINED_CONDITION = 'QueueClaimsRetained';

/** The condition reported while claims are retained (none otherwise: the condition is removed). */
export function retainedCondition(poolName: string, claims: readonly string[]) {
  return {
    type: RETAINED_CONDITION,
    status: 'True' as const,
    reason: 'ScaledDown',
    message: `spool claims of removed relays: ${claims.join(', ')}; one may hold mail if its relay stopped without handing off. Scale ${poolName} up to cover their ordinals to deliver it, then scale down again (docs/operator.md, "Retained queue claims"), or delete a claim known to be empty.`,
  };
}
