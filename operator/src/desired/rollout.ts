// Whether a pool's relays must be replaced (its pod template changed), and whether that waits for
// a rollout slot. An operator upgrade usually changes every pool's template at once (relays run
// the operator's image by default); the controller's RolloutSlots let only --max-concurrent-rollouts
// pools roll at a time, and a pool without a slot keeps its current workload (RolloutQueued).
import { createHash } from 'node:crypto';
import type { KubeObject } from './types.ts';

/** On the Deployment/StatefulSet (not its template): the hash of the pod template it carries. */
const TEMPLATE_HASH = 'mailfleet.dev/template-hash';

/** Stamps the workload with the hash of its pod template; returns the hash. */
export function stampTemplateHash(workload: KubeObject): string {
  const spec = (workload as { spec?: { template?: unknown } }).spec;
  const hash = createHash('sha256')
    .update(JSON.stringify(spec?.template ?? null))
    .digest('hex')
    .slice(0, 16);
  workload.metadata = {
    ...workload.metadata,
    annotations: { ...workload.metadata?.annotations, [TEMPLATE_HASH]: hash },
  };
  return hash;
}

/**
 * A rollout is wanted when a workload exists and carries another template (or none stamped: one
 * written by an operator version before this one). A new pool is no rollout: it has no relays to
 * replace.
 */
export function rolloutWanted(existing: KubeObject | undefined, desiredHash: string): boolean {
  if (!existing) return false;
  return existing.metadata?.annotations?.[TEMPLATE_HASH] !== desiredHash;
}
