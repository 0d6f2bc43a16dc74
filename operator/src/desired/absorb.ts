// Re-absorbing the mail a removed StatefulSet relay left on its claim (claims.ts). The operator
// cannot look inside a volume, so every retained claim whose relay is gone gets a Job
// `<pool>-absorb-<ordinal>` that mounts it and runs `mailfleet relay --evacuate`: the spool is
// recovered and handed to the pool's ready relays through the handoff protocol (pool secret,
// headless Service); the Job succeeds only once the spool is empty. A succeeded Job is the record
// that its claim holds no mail: the claim is no longer reported (it is kept, never deleted).
// A claim whose ordinal runs a relay again is not absorbed: its Job is pruned.
// A Job that failed is kept a while (its pods' logs say why) and remade after a delay that
// doubles with each failure; the failures are counted in the pool's status.absorbFailures (the
// only record once the Job is deleted), reported in the condition, an Event and a metric.
import type { V1Job } from '@kubernetes/client-node';
import { EVACUATE_EXIT } from '../../../contract/layout.ts';
import { RETAINED_CONDITION, claimOrdinal } from './claims.ts';
import { FIELD_MANAGER, INSTANCE_LABEL, MANAGED_BY, childMeta, names } from './meta.ts';
import { SPOOL_VOLUME, podTemplate, type PodOptions } from './pod.ts';
import type { KubeObject } from './types.ts';

const ABSORB_COMPONENT = 'absorb';
/** The absorb pods' name label: not the relays' (no Service, PDB or StatefulSet selects them). */
export const ABSORB_NAME = 'mailfleet-absorb';
/** Runs of one Job before it counts as failed (the Job controller's backoff: 10 s doubling, 6 min at most). */
const BACKOFF_LIMIT = 6;
/** The first remake of a failed Job waits this long; each further failure doubles it, up to the cap. */
const REMAKE_DELAY_MS = 30_000;
const REMAKE_DELAY_MAX_MS = 60 * 60_000;

/** How long a Job that failed `failures` times in a row is kept before it is remade. Pure. */
export function remakeDelayMs(failures: number): number {
  return Math.min(REMAKE_DELAY_MS * 2 ** Math.max(0, failures - 1), REMAKE_DELAY_MAX_MS);
}

/** One claim's failed absorb Jobs since it was last absorbed (RelayPool status.absorbFailures). */
export type AbsorbFailure = {
  claim: string;
  failures: number;
  /** uid of the last failed Job counted: the same Job seen again is not counted twice. */
  lastFailedJob: string;
  lastFailureTime: string;
};

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
  /** The pool's status.absorbFailures as last written. */
  failures?: readonly AbsorbFailure[];
  /** The reconcile's clock (ms): when a failed Job is remade. */
  now?: number;
};

export type PlannedClaim = {
  claim: string;
  ordinal: number;
  job: string;
  state: ClaimAbsorption;
  /** Failed Jobs of this claim since it was last absorbed. */
  failures: number;
  /** A failed Job is kept until then (ISO time), then deleted and remade. */
  remakeAt?: string;
  /** Why the last Job failed (its Failed condition's reason and message). */
  failure?: string;
};

export type AbsorbPlan = {
  claims: PlannedClaim[];
  /** Ordinals whose Job is to be created. */
  create: number[];
  /** Names of Jobs to keep (running, failed and waiting to be remade, or the record of an absorbed claim). */
  keep: string[];
  /** status.absorbFailures to write: one entry per claim not yet absorbed with a failed Job. */
  failures: AbsorbFailure[];
  /** Claims whose failure this pass counted for the first time (an Event each). */
  newFailures: PlannedClaim[];
  /** When the next failed Job is due to be remade. */
  requeueAfterMs?: number;
};

type JobCondition = {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
};
type JobStatus = {
  succeeded?: number;
  conditions?: JobCondition[];
};

function failedCondition(job: KubeObject): JobCondition | undefined {
  const status = (job.status ?? {}) as JobStatus;
  return status.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
}

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
  const plan: AbsorbPlan = { claims: [], create: [], keep: [], failures: [], newFailures: [] };
  const pods = new Set(input.pods);
  const now = input.now ?? 0;
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
    const planned: PlannedClaim = { claim, ordinal, job: jobName, state, failures: 0 };
    // An absorbed claim starts counting afresh (it left the status with its success).
    let record = state === 'Absorbed' ? undefined : input.failures?.find((f) => f.claim === claim);
    const failed = job && state === 'Failed' ? failedCondition(job) : undefined;
    if (job && state === 'Failed') {
      const uid = job.metadata?.uid ?? jobName;
      if (record?.lastFailedJob !== uid) {
        record = {
          claim,
          failures: (record?.failures ?? 0) + 1,
          lastFailedJob: uid,
          lastFailureTime: failed?.lastTransitionTime ?? new Date(now).toISOString(),
        };
        plan.newFailures.push(planned);
      }
      const remakeAt = Date.parse(record.lastFailureTime) + remakeDelayMs(record.failures);
      planned.remakeAt = new Date(remakeAt).toISOString();
      planned.failure = [failed?.reason, failed?.message].filter(Boolean).join(': ') || 'Failed';
      // Kept until its remake is due, its pods and their logs with it; then deleted, and its
      // successor made at the pass that finds it gone.
      if (remakeAt > now) {
        plan.keep.push(jobName);
        plan.requeueAfterMs = Math.min(plan.requeueAfterMs ?? Infinity, remakeAt - now);
      }
    } else if (job && state !== 'Failed') plan.keep.push(jobName);
    // A failed Job being deleted is still there: its successor waits until it is gone.
    else if (!job && state === 'Absorbing') plan.create.push(ordinal);
    if (record) {
      planned.failures = record.failures;
      plan.failures.push(record);
    }
    plan.claims.push(planned);
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
  const container = ABSORB_COMPONENT;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: childMeta(o.pool, absorbJobName(poolName, o.ordinal), ABSORB_COMPONENT),
    spec: {
      backoffLimit: BACKOFF_LIMIT,
      podFailurePolicy: {
        rules: [
          // A spool it cannot read, a config with no handoff target: the next pod would fail alike.
          {
            action: 'FailJob',
            onExitCodes: {
              containerName: container,
              operator: 'In',
              values: [EVACUATE_EXIT.NoHandoffTarget, EVACUATE_EXIT.SpoolUnreadable],
            },
          },
          // An evicted or preempted pod is not the evacuation failing.
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        ],
      },
      template: {
        metadata: { labels: { ...absorbPodLabels(poolName), [MANAGED_BY]: FIELD_MANAGER } },
        spec,
      },
    },
  };
}

const STATE_TEXT: Record<Exclude<ClaimAbsorption, 'Absorbed' | 'Failed'>, string> = {
  RelayStopping: 'its relay is still stopping',
  WaitingForRelays: 'no ready relay to take its mail yet',
  Absorbing: 'being absorbed',
};

function claimText(c: PlannedClaim): string {
  const failures = c.failures === 1 ? 'failed once' : `failed ${c.failures} times`;
  const state =
    c.state === 'Failed'
      ? `absorb Job ${failures} (${c.failure}), remade ${c.remakeAt ? `at ${c.remakeAt}` : 'now'}`
      : c.failures > 0
        ? `${STATE_TEXT[c.state as keyof typeof STATE_TEXT] ?? c.state}, earlier Jobs ${failures}`
        : (STATE_TEXT[c.state as keyof typeof STATE_TEXT] ?? c.state);
  return `${c.claim} (${state}, Job ${c.job})`;
}

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
  const listed = claims.map(claimText).join(', ');
  return {
    type: RETAINED_CONDITION,
    status: 'True' as const,
    reason,
    message: `spool claims of removed relays that may hold mail: ${listed}. Each is handed to the pool's ready relays by its absorb Job (docs/operator.md, "Retained queue claims").${heldAt === undefined ? '' : ` The StatefulSet is held at ${heldAt} replicas until the absorb Job of ordinal ${heldAt} has finished.`}`,
  };
}

/** The Warning Event of a failure counted for the first time. */
export function absorbFailedMessage(c: PlannedClaim): string {
  return `absorb Job ${c.job} of claim ${c.claim} failed (${c.failure}); failure ${c.failures} since the claim was retained, remade at ${c.remakeAt} (kubectl logs job/${c.job})`;
}
