// Re-absorbing the mail a removed StatefulSet relay left on its claim (claims.ts). The operator
// cannot look inside a volume, so every retained claim whose relay is gone gets a Job
// `<pool>-absorb-<ordinal>` that mounts it and runs `mailfleet relay --evacuate`: the spool is
// recovered and handed to the pool's ready relays through the handoff protocol (pool secret,
// headless Service); the Job succeeds only once the spool is empty. A succeeded Job is the record
// that its claim holds no mail: the claim is no longer reported (it is kept, never deleted).
// A claim whose ordinal runs a relay again is not absorbed: its Job is pruned.
import type { V1Job } from '@kubernetes/client-node';
import { RETAINED_CONDITION, claimOrdinal } from './claims.ts';
import { FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY, childMeta, names } from './meta.ts';
import { SPOOL_VOLUME, podTemplate, type PodOptions } from './pod.ts';
import type { KubeObject } from './types.ts';

const ABSORB_COMPONENT = 'absorb';
/** The absorb pods' name label: not the relays' (no Service, PDB or StatefulSet selects them). */
export const ABSORB_NAME = 'mailfleet-absorb';
/** Runs of one Job before it counts as failed (the Job controller's backoff: 10 s doubling, 6 min at most). */
const BACKOFF_LIMIT = 6;

const absorbJobName = (pool: string, ordinal: number) => `${pool}-absorb-${ordinal}`;

/** Labels of the absorb pods, which the relays' NetworkPolicy admits to the handoff port. */
export function absorbPodLabels(pool: string): Record<string, string> {
  return { 'app.kubernetes.io/name': ABSORB_NAME, [INSTANCE_LABEL]: pool };
}

export type ClaimAbsorption =
  /** The relay of this ordinal still exists (draining, terminating): it hands off itself. */
  | 'RelayStopping'
  /** No ready relay in the pool to take the mail: no Job yet. */
  | 'WaitingForRelays'
  | 'Absorbing'
  /** The Job succeeded: the claim's spool is empty. */
  | 'Absorbed'
  /** The Job ran out of retries: it is deleted and a new one made at the next pass. */
  | 'Failed';

export type AbsorbInput = {
  poolName: string;
  /** Retained spool claims (claims.ts retainedClaims). */
  claims: readonly string[];
  /** Names of the pool's pods that exist, terminating ones included. */
  pods: readonly string[];
  /** The pool's Jobs (children of kind Job). */
  jobs: readonly KubeObject[];
  /** Ready relays of the pool: the peers that take the mail. */
  readyRelays: number;
  /**
   * spec.replicas (0 when the pool is a Deployment now); claims below it are retained only while
   * their absorb Job still runs (replicasWhileAbsorbing). Default: no claim is wanted again.
   */
  wanted?: number;
};

export type AbsorbPlan = {
  claims: { claim: string; ordinal: number; job: string; state: ClaimAbsorption }[];
  /** Ordinals whose Job is to be created. */
  create: number[];
  /** Names of Jobs to keep (running, or the record of an absorbed claim). */
  keep: string[];
};

type JobStatus = {
  succeeded?: number;
  conditions?: { type: string; status: string }[];
};

function jobOutcome(job: KubeObject): 'succeeded' | 'failed' | 'running' {
  const status = (job.status ?? {}) as JobStatus;
  const has = (type: string) => status.conditions?.some((c) => c.type === type && c.status === 'True');
  if (has('Complete') || (status.succeeded ?? 0) > 0) return 'succeeded';
  if (has('Failed')) return 'failed';
  return 'running';
}

/**
 * The StatefulSet's replica count while absorb Jobs run: a scale-up over a claim whose absorb pod
 * still runs would start a relay on a spool another process has open, so the StatefulSet stays
 * below the lowest such ordinal until that Job has finished (succeeded or failed). Pure.
 */
export function replicasWhileAbsorbing(
  poolName: string,
  wanted: number,
  jobs: readonly KubeObject[],
): number {
  let held = wanted;
  const prefix = absorbJobName(poolName, 0).slice(0, -1);
  for (const job of jobs) {
    const name = job.metadata?.name ?? '';
    const ordinal = name.slice(prefix.length);
    if (!name.startsWith(prefix) || !/^\d+$/.test(ordinal)) continue;
    if (jobOutcome(job) === 'running') held = Math.min(held, Number(ordinal));
  }
  return held;
}

/** Which retained claims get an absorb Job, and what each one's state is. Pure. */
export function absorbPlan(input: AbsorbInput): AbsorbPlan {
  const plan: AbsorbPlan = { claims: [], create: [], keep: [] };
  const pods = new Set(input.pods);
  for (const claim of input.claims) {
    const ordinal = claimOrdinal(input.poolName, claim);
    if (ordinal === undefined) continue;
    const jobName = absorbJobName(input.poolName, ordinal);
    const job = input.jobs.find((j) => j.metadata?.name === jobName);
    // Wanted again (the StatefulSet is held below it): only its running Job is kept, never a new one.
    if (ordinal < (input.wanted ?? 0) && (!job || jobOutcome(job) !== 'running')) continue;
    const state = ((): ClaimAbsorption => {
      // Two processes must never share a spool: the relay finishes (or is gone) first.
      if (pods.has(`${names.workload(input.poolName)}-${ordinal}`)) return 'RelayStopping';
      if (job) {
        const outcome = jobOutcome(job);
        return outcome === 'succeeded' ? 'Absorbed' : outcome === 'failed' ? 'Failed' : 'Absorbing';
      }
      return input.readyRelays > 0 ? 'Absorbing' : 'WaitingForRelays';
    })();
    plan.claims.push({ claim, ordinal, job: jobName, state });
    if (job && state !== 'Failed') plan.keep.push(jobName);
    // A failed Job being deleted is still there: its successor waits until it is gone.
    else if (!job && state === 'Absorbing') plan.create.push(ordinal);
  }
  return plan;
}

/** Claims that may still hold mail (everything but the absorbed ones), for the condition and metric. */
export function unabsorbed(plan: AbsorbPlan): string[] {
  return plan.claims.filter((c) => c.state !== 'Absorbed').map((c) => c.claim);
}

/** The Job that empties `claim` into the pool's relays: a relay pod's hardening, no port, no probe. */
export function absorbJob(
  o: Omit<PodOptions, 'persistentSpool'> & { ordinal: number; claim: string },
): V1Job {
  const poolName = o.pool.metadata.name ?? '';
  const template = podTemplate({ ...o, persistentSpool: true });
  const spec = template.spec!;
  const relay = spec.containers[0]!;
  spec.containers = [
    {
      name: ABSORB_COMPONENT,
      image: relay.image ?? o.image,
      args: [...(relay.args ?? []), '--evacuate'],
      env: relay.env ?? [],
      securityContext: relay.securityContext ?? {},
      volumeMounts: relay.volumeMounts ?? [],
      ...(relay.resources ? { resources: relay.resources } : {}),
    },
  ];
  spec.volumes = [
    ...(spec.volumes ?? []),
    { name: SPOOL_VOLUME, persistentVolumeClaim: { claimName: o.claim } },
  ];
  spec.restartPolicy = 'Never';
  delete spec.topologySpreadConstraints;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: childMeta(o.pool, absorbJobName(poolName, o.ordinal), ABSORB_COMPONENT),
    spec: {
      backoffLimit: BACKOFF_LIMIT,
      template: {
        metadata: { labels: { ...absorbPodLabels(poolName), [MANAGED_BY]: FIELD_MANAGER } },
        spec,
      },
    },
  };
}

const STATE_TEXT: Record<Exclude<ClaimAbsorption, 'Absorbed'>, string> = {
  RelayStopping: 'its relay is still stopping',
  WaitingForRelays: 'no ready relay to take its mail yet',
  Absorbing: 'being absorbed',
  Failed: 'absorb Job failed, retried',
};

/**
 * The condition reported while claims may hold mail (none otherwise: the condition is removed).
 * `claims`: the absorb plan's claims that are not absorbed yet.
 */
export function retainedCondition(claims: AbsorbPlan['claims'], heldAt?: number) {
  const states = new Set(claims.map((c) => c.state));
  const reason = states.has('Failed')
    ? 'AbsorbFailed'
    : states.has('WaitingForRelays')
      ? 'WaitingForRelays'
      : 'Absorbing';
  const listed = claims
    .map((c) => `${c.claim} (${STATE_TEXT[c.state as keyof typeof STATE_TEXT] ?? c.state}, Job ${c.job})`)
    .join(', ');
  return {
    type: RETAINED_CONDITION,
    status: 'True' as const,
    reason,
    message: `spool claims of removed relays that may hold mail: ${listed}. Each is handed to the pool's ready relays by its absorb Job (docs/operator.md, "Retained queue claims").${heldAt === undefined ? '' : ` The StatefulSet is held at ${heldAt} replicas until the absorb Job of ordinal ${heldAt} has finished.`}`,
  };
}
