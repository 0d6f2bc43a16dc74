// desiredState(observed): everything a RelayPool should be (children, statuses, events), as a
// function of what the reconcile observed. No client, no clock, no randomness of its own.
import { stringify } from 'yaml';
import { cond, conditionTransitions, findCondition, mergeConditions } from '../api/conditions.ts';
import type { ConditionInput } from '../api/conditions.ts';
import { withDefaults } from '../api/defaults.ts';
import { APPLIED_HASH, appliedHash } from '../kube/diff.ts';
import { deployment } from './deployment.ts';
import { resolveDomains } from './domains.ts';
import { horizontalPodAutoscaler } from './hpa.ts';
import { poolInputs } from './inputs.ts';
import { returnPathHost, returnPathInputs, returnPathService } from './return-path.ts';
import { trackingInputs } from './tracking.ts';
import { trackerDeployment, trackerService } from './tracker.ts';
import type { PoolInputs } from './inputs.ts';
import { childMeta, names, selectorLabels } from './meta.ts';
import { networkPolicy } from './networkpolicy.ts';
import { podDisruptionBudget } from './pdb.ts';
import { resolveRateLimits } from './ratelimits.ts';
import { renderRelayConfig, restartChecksum } from './relay-config.ts';
import { relaySecrets } from './secret.ts';
import type { RelaySecretOptions } from './secret.ts';
import { endpoint, headlessService, service } from './service.ts';
import { serviceMonitor } from './servicemonitor.ts';
import { rolloutWanted, stampTemplateHash } from './rollout.ts';
import { statefulSet } from './statefulset.ts';
import { RETAINED_CONDITION, retainedClaims } from './claims.ts';
import {
  absorbFailedMessage,
  absorbJob,
  absorbPlan,
  replicasWhileAbsorbing,
  retainedCondition,
  unabsorbed,
} from './absorb.ts';
import { EVENTS_CONDITION, eventsCondition, eventsLags } from './events.ts';
import { deletionDecision, intakeOpen } from './deletion.ts';
import { evacuatesInto, evacuatingInto, handOffProblem } from './handoff-to.ts';
import { SHARED_STATE_NOT_CONFIGURED, sharedStateCondition } from './shared-state.ts';
import { resolveTls, tlsSource } from './tls.ts';
import type { Desired, EventSpec, Generators, KubeObject, Observed, OwnKind } from './types.ts';
import type { Condition } from '../api/types.ts';

/** How soon a pool waiting for a rollout slot looks again. */
const ROLLOUT_RETRY_MS = 5000;

type Workload = {
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  /** The workload controller has seen the workload's latest spec (status.observedGeneration). */
  observed: boolean;
  /**
   * What we want is what was applied: the workload's applied-hash annotation (kube/diff.ts) is that
   * of the desired workload. Right after a spec change the cached status still describes the
   * previous spec: a rollout must not look finished before it started.
   */
  applied: boolean;
};

function workloadChild(observed: Observed, kind: string): KubeObject | undefined {
  return observed.children.find(
    (c) => c.kind === kind && c.metadata?.name === names.workload(observed.poolName),
  );
}

function workloadStatus(
  child: KubeObject | undefined,
  desired: KubeObject | undefined,
): Workload | undefined {
  if (!child) return undefined;
  const status = (child.status ?? {}) as Record<string, number | undefined>;
  const generation = child.metadata?.generation ?? 0;
  const want = desired ? appliedHash(desired) : undefined;
  return {
    replicas: status.replicas ?? 0,
    readyReplicas: status.readyReplicas ?? 0,
    updatedReplicas: status.updatedReplicas ?? 0,
    observed: (status.observedGeneration ?? 0) >= generation,
    applied: want === undefined || child.metadata?.annotations?.[APPLIED_HASH] === want,
  };
}

function ref(object: {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string };
}) {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    name: object.metadata.name ?? '',
    namespace: object.metadata.namespace ?? '',
    uid: object.metadata.uid ?? '',
  };
}

/**
 * Where every new object starts while its relays come up: not news. Recording them was a third of
 * all the operator's writes when 1000 pools were created (docs/benchmarks-operator.md).
 */
const STARTING = new Set(['WorkloadPending', 'RelaysNotReady']);

/** Events for condition transitions of one object (Warning when the news is bad). */
export function transitionEvents(
  object: Parameters<typeof ref>[0],
  before: Condition[] | undefined,
  after: Condition[],
): EventSpec[] {
  // A rollout the user asked for takes Ready away for a while: news, but not bad news.
  const bad = (c: Condition) =>
    c.type === 'Degraded' || c.type === 'Suspended'
      ? c.status === 'True'
      : c.status === 'False' && c.reason !== 'RollingOut' && c.reason !== 'RolloutQueued';
  return conditionTransitions(before, after)
    .filter(({ condition }) => {
      const previous = before?.find((c) => c.type === condition.type);
      if (STARTING.has(condition.reason) && (!previous || STARTING.has(previous.reason))) return false;
      // A pool without a shared store is the user's choice, not news.
      if (condition.reason === SHARED_STATE_NOT_CONFIGURED) return false;
      // A new domain or limit becoming Ready is its pool's news (the pool's Ready Event), not its
      // own: one Event per pool instead of one per object (docs/benchmarks-operator.md).
      const firstReady =
        condition.type === 'Ready' &&
        condition.status === 'True' &&
        (!previous || STARTING.has(previous.reason));
      return !(firstReady && object.kind !== 'RelayPool');
    })
    .filter(({ condition, from }) => from !== undefined || bad(condition) || condition.type === 'Ready')
    .filter(({ condition }) => condition.type !== 'Progressing')
    .map(({ condition }) => ({
      regarding: ref(object),
      type: bad(condition) ? 'Warning' : 'Normal',
      reason: condition.reason,
      message: condition.message,
    }));
}

/**
 * The relay config is one ConfigMap, and the API server refuses objects over 1 MiB: past this size
 * the pool says so while it still works (a DKIM key is not in it: the relay Secret is sharded).
 */
const CONFIG_WARN_BYTES = 768 * 1024;

export function desiredState(observed: Observed, gen: Generators): Desired {
  const desired: Desired = {
    apply: [],
    create: [],
    keep: [],
    prune: false,
    statuses: [],
    events: [],
    suspend: [],
    resume: [],
  };
  const status = (kind: OwnKind, name: string, value: Record<string, unknown>) =>
    desired.statuses.push({ kind, name, status: value });
  const now = observed.now.toISOString();

  if (!observed.pool) {
    // Children of a deleted pool are garbage-collected through their owner references.
    for (const d of resolveDomains(observed, gen, undefined).resolved) {
      status('SendingDomain', d.object.metadata.name ?? '', d.status);
      desired.events.push(...transitionEvents(d.object, d.object.status?.conditions, d.conditions));
      for (const e of d.events) desired.events.push({ regarding: ref(d.object), ...e });
    }
    for (const l of resolveRateLimits(observed, 0))
      status('RateLimit', l.object.metadata.name ?? '', l.status);
    return desired;
  }

  const original = observed.pool;
  const { resource: pool, problems } = withDefaults(original);
  const persistent = pool.spec.queue?.persistence !== undefined;
  const wanted = pool.spec.replicas;

  const tls = problems.length ? undefined : resolveTls(pool, observed);
  const inputs: PoolInputs = problems.length
    ? {
        problem: cond(
          'Ready',
          'False',
          'InvalidSpec',
          problems.map((p) => `${p.path}: ${p.message}`).join('; '),
        ),
        create: [],
        keep: [],
        events: [],
      }
    : tls?.problem
      ? { problem: tls.problem, create: [], keep: [], events: [] }
      : poolInputs(pool, observed, gen);
  if (tls) {
    // The certificate's own objects do not depend on the other inputs: a cert-manager Certificate
    // must exist for its Secret to appear, even while the pool waits for that Secret.
    desired.apply.push(...tls.apply);
    desired.create.push(...tls.create);
    desired.keep.push(...tls.keep);
    if (tls.requeueAfterMs !== undefined) desired.requeueAfterMs = tls.requeueAfterMs;
    if (tls.certificate) desired.certificate = tls.certificate;
  }
  const poolConditions: ConditionInput[] = [];
  /** Size of the rendered relay.yaml (0 while the pool is blocked). */
  let configBytes = 0;
  const domains = resolveDomains(observed, gen, inputs.problem?.message, {
    ehloName: pool.spec.delivery?.ehloName,
    returnPath: returnPathHost(pool),
  });
  const bound = domains.resolved.filter((d) => d.bound);
  const tracks = bound.some((d) => d.bound!.tracking);
  // The tracking key is an input like the pool's Secrets: a malformed one blocks the pool.
  const tracking = tracks && !inputs.problem ? trackingInputs(pool, observed, gen) : undefined;
  if (tracking?.problem) inputs.problem = tracking.problem;
  const hasReturnPath = bound.some((d) => d.bound!.returnPath);
  const returnPath = hasReturnPath && !inputs.problem ? returnPathInputs(pool, observed, gen) : undefined;
  if (returnPath?.problem) inputs.problem = returnPath.problem;
  // Config and workload are built before any status is decided: the workload's status counts only
  // when it describes the spec this pass wants (its applied hash).
  const child = workloadChild(observed, persistent ? 'StatefulSet' : 'Deployment');
  const ready = workloadStatus(child, undefined)?.readyReplicas ?? 0;
  const limits = resolveRateLimits(observed, ready);
  const image = pool.spec.image ?? observed.settings.image;
  const imagePullSecrets =
    pool.spec.imagePullSecrets?.map((s) => s.name) ?? observed.settings.imagePullSecrets ?? [];
  const config = inputs.problem
    ? undefined
    : renderRelayConfig({
        pool,
        domains: bound.map((d) => d.bound!),
        rateLimits: limits.flatMap((l) => (l.rule ? [l.rule] : [])),
        hasUsers: inputs.users !== undefined,
        hasSmarthostCredentials: inputs.smarthost !== undefined,
        ...(observed.handOffTarget?.pool ? { handOffTarget: observed.handOffTarget.pool } : {}),
      });
  const checksum = config ? restartChecksum(config) : '';
  const secretOptions: RelaySecretOptions = {
    pool,
    dkimKeys: bound.map((d) => ({
      domain: d.bound!.domain,
      selector: d.bound!.dkim!.selector,
      pem: d.pem ?? '',
    })),
  };
  if (inputs.users) secretOptions.users = inputs.users;
  if (inputs.smarthost) secretOptions.smarthost = inputs.smarthost;
  const relaySecretShards = config ? relaySecrets(secretOptions) : [];
  // A new shard is a new source in the pods' projected volume: the relays roll (once per ~500 keys).
  const workloadOptions = {
    pool,
    image,
    imagePullSecrets,
    checksum,
    relaySecretShards: relaySecretShards.length,
    tracking: tracks,
    returnPath: hasReturnPath,
  };
  const absorbJobs = observed.children.filter((c) => c.kind === 'Job');
  // A scale-up over a claim whose absorb Job still runs waits for that Job (absorb.ts).
  const heldAt = persistent ? replicasWhileAbsorbing(observed.poolName, wanted, absorbJobs) : wanted;
  const desiredWorkload = config
    ? ((persistent
        ? statefulSet({ ...workloadOptions, pool: { ...pool, spec: { ...pool.spec, replicas: heldAt } } })
        : deployment(workloadOptions)) as KubeObject)
    : undefined;
  const wantsRollout = desiredWorkload ? rolloutWanted(child, stampTemplateHash(desiredWorkload)) : false;
  // Queued: the current workload stays as it is and its status is judged as it stands.
  const queued = wantsRollout && observed.rolloutQueued === true;
  const workload = workloadStatus(child, queued ? undefined : desiredWorkload);
  // The spec we want has reached every relay pod: applied, seen by the workload controller, and no
  // pod of an older template left.
  const templateRolledOut =
    workload !== undefined &&
    workload.applied &&
    workload.observed &&
    workload.updatedReplicas >= workload.replicas;
  const scaled = workload !== undefined && workload.replicas === wanted && ready >= wanted;
  const wasReady = findCondition(original.status?.conditions, 'Ready')?.status === 'True';
  // Ready means serving what was asked for: every wanted relay up once; after that a scale-up
  // (an HPA's, say) does not take Ready away while relays of the current spec serve.
  // Queued is not serving the spec asked for either: Ready waits for the rollout, as for any change.
  const poolReady =
    !queued &&
    !inputs.problem &&
    templateRolledOut &&
    (wanted === 0 ? ready === 0 : ready >= wanted || (wasReady && ready > 0));

  if (inputs.problem) {
    poolConditions.push(
      inputs.problem,
      cond('Degraded', 'True', inputs.problem.reason, inputs.problem.message),
    );
    poolConditions.push(
      cond(
        'Progressing',
        'False',
        'Blocked',
        `nothing is changed until this is fixed: ${inputs.problem.message}`,
      ),
    );
  } else if (config && desiredWorkload) {
    desired.prune = true;
    desired.create.push(
      ...inputs.create,
      ...domains.creates,
      ...(tracking?.create ?? []),
      ...(returnPath?.create ?? []),
    );
    desired.keep.push(...inputs.keep, ...(tracking?.keep ?? []), ...(returnPath?.keep ?? []));
    const relayYaml = stringify(config);
    configBytes = Buffer.byteLength(relayYaml);
    desired.apply.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: childMeta(pool, names.config(observed.poolName), 'config'),
      data: { 'relay.yaml': relayYaml },
    });
    for (const shard of relaySecretShards) desired.apply.push(shard as KubeObject);
    if (queued) {
      desired.keep.push(`${desiredWorkload.kind}/${desiredWorkload.metadata?.name ?? ''}`);
      // Slots come free as other pools finish: look again soon rather than at the resync.
      desired.requeueAfterMs = Math.min(desired.requeueAfterMs ?? ROLLOUT_RETRY_MS, ROLLOUT_RETRY_MS);
    } else desired.apply.push(desiredWorkload);
    desired.rollout = { wanted: wantsRollout, inProgress: !templateRolledOut };
    desired.apply.push(headlessService(pool) as KubeObject);
    if (tracks)
      desired.apply.push(
        // Stopped while a Drain deletion waits, as the relays' intake is closed (deletion-events.ts).
        trackerDeployment({ pool, image, imagePullSecrets, stopped: !intakeOpen(original) }) as KubeObject,
        trackerService(pool) as KubeObject,
      );
    const optional = [
      service(pool),
      podDisruptionBudget(pool),
      horizontalPodAutoscaler(pool),
      serviceMonitor(pool, observed.serviceMonitorCRD),
      tracks ? serviceMonitor(pool, observed.serviceMonitorCRD, 'tracker') : undefined,
      networkPolicy({
        pool,
        managementNamespaces: observed.settings.managementNamespaces ?? [],
        returnPath: hasReturnPath,
        ...(evacuatesInto(original, observed.handOffTarget?.pool)
          ? { handOffTo: pool.spec.deletionHandOffTo }
          : {}),
        handOffFrom: evacuatingInto(original, observed.handOffSources ?? []),
      }),
      hasReturnPath ? returnPathService(pool) : undefined,
    ];
    for (const child of optional) if (child) desired.apply.push(child as KubeObject);
    for (const d of domains.resolved) {
      const name = d.object.metadata.name ?? '';
      if (d.suspendNow !== undefined) desired.suspend.push({ name, message: d.suspendNow });
      if (d.resumed) desired.resume.push(name);
    }

    const problems = observed.writeProblems ?? [];
    const writeProblem = problems.find((p) => p.reason === 'NotOwned') ?? problems[0];
    const writeMessage = problems.map((p) => `${p.object}: ${p.message}`).join('; ');
    const progress = `${ready}/${wanted} relays ready, ${templateRolledOut ? (workload?.updatedReplicas ?? 0) : 0} up to date`;
    const notReadyReason = queued
      ? 'RolloutQueued'
      : !workload
        ? 'WorkloadPending'
        : !templateRolledOut && (wasReady || ready > 0)
          ? 'RollingOut'
          : 'RelaysNotReady';
    if (writeProblem)
      // What we decided could not be written: the status must not say all is well.
      poolConditions.push(
        cond('Ready', 'False', writeProblem.reason, writeMessage),
        cond('Progressing', 'False', 'Blocked', `not every change could be written: ${writeMessage}`),
        cond('Degraded', 'True', writeProblem.reason, writeMessage),
      );
    else
      poolConditions.push(
        poolReady
          ? cond('Ready', 'True', 'RelaysReady', progress)
          : cond('Ready', 'False', notReadyReason, progress),
        queued
          ? cond('Progressing', 'True', 'RolloutQueued', progress)
          : templateRolledOut && scaled
            ? cond('Progressing', 'False', 'RolloutComplete', progress)
            : cond('Progressing', 'True', templateRolledOut ? 'Scaling' : 'RollingOut', progress),
        configBytes > CONFIG_WARN_BYTES
          ? cond(
              'Degraded',
              'True',
              'ConfigNearSizeLimit',
              `the relay config is ${Math.round(configBytes / 1024)} KiB of the API server's 1 MiB object limit: spread this pool's domains and limits over more pools before it is refused`,
            )
          : cond('Degraded', 'False', 'AsExpected', 'no problem detected'),
      );
    if (queued)
      poolConditions.push(
        cond(
          'RolloutQueued',
          'True',
          'WaitingForSlot',
          'the relay pod template changed; other pools are rolling out (--max-concurrent-rollouts): this pool rolls when one finishes',
        ),
      );
  }

  if (tls?.condition) poolConditions.push(tls.condition);
  // A Deployment pool (persistence removed) has no ordinal in use: every old claim is retained.
  const absorb = absorbPlan({
    poolName: observed.poolName,
    claims: retainedClaims(observed.poolName, persistent ? heldAt : 0, observed.claims ?? []),
    pods: observed.pods ?? [],
    jobs: absorbJobs,
    readyRelays: ready,
    wanted: persistent ? wanted : 0,
    failures: original.status?.absorbFailures ?? [],
    now: observed.now.getTime(),
  });
  // Jobs are created, never updated (a Job's template is immutable), and only for a pool whose
  // relays are rendered (the Job mounts their config).
  desired.keep.push(...absorb.keep.map((name) => `Job/${name}`));
  if (desired.prune)
    for (const { ordinal, claim } of absorb.claims.filter((c) => absorb.create.includes(c.ordinal)))
      desired.create.push(absorbJob({ ...workloadOptions, ordinal, claim }) as KubeObject);
  else desired.keep.push(...absorb.claims.map((c) => `Job/${c.job}`));
  const retained = unabsorbed(absorb);
  if (retained.length > 0)
    poolConditions.push(
      retainedCondition(
        absorb.claims.filter((c) => retained.includes(c.claim)),
        heldAt < wanted ? heldAt : undefined,
      ),
    );
  desired.retainedClaims = retained;
  desired.absorbFailures = Object.fromEntries(absorb.failures.map((f) => [f.claim, f.failures]));
  if (absorb.requeueAfterMs !== undefined)
    desired.requeueAfterMs = Math.min(desired.requeueAfterMs ?? Infinity, absorb.requeueAfterMs);
  for (const failed of absorb.newFailures)
    desired.events.push({
      regarding: ref(original),
      type: 'Warning',
      reason: 'AbsorbJobFailed',
      message: absorbFailedMessage(failed),
    });
  const events = eventsCondition(pool, eventsLags(observed));
  if (events) poolConditions.push(events);
  poolConditions.push(sharedStateCondition(pool, observed.relayQueues));
  const handOffTo = pool.spec.deletionHandOffTo;
  const deletion = deletionDecision(
    original,
    observed.relayQueues,
    handOffTo ? { target: handOffTo, problem: handOffProblem(original, observed.handOffTarget) } : undefined,
    { trackerPods: (observed.trackers ?? []).map((t) => t.pod), now: observed.now.getTime() },
  );
  if (deletion.condition) poolConditions.push(deletion.condition);
  if (deletion.finalizer) desired.finalizer = deletion.finalizer;
  if (deletion.requeueAfterMs !== undefined)
    desired.requeueAfterMs = Math.min(
      desired.requeueAfterMs ?? deletion.requeueAfterMs,
      deletion.requeueAfterMs,
    );
  // Conditions that describe something no longer there (TLS off, no retained claim) go.
  const gone = (c: Condition) =>
    (c.type === 'TLSReady' && !tlsSource(pool)) ||
    (c.type === RETAINED_CONDITION && retained.length === 0) ||
    (c.type === EVENTS_CONDITION && !events);
  const poolStatus: Record<string, unknown> = {
    observedGeneration: original.metadata.generation,
    conditions: mergeConditions(
      original.status?.conditions?.filter((c) => !gone(c)),
      poolConditions,
      original.metadata.generation,
      now,
    ),
    replicas: workload?.replicas ?? 0,
    readyReplicas: ready,
    selector: Object.entries(selectorLabels(observed.poolName))
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    domains: domains.resolved.filter((d) => d.bound).length,
    endpoint: endpoint(pool),
    adminTokensSecret: names.adminTokens(observed.poolName),
  };
  if (tls?.status) poolStatus.tls = tls.status;
  if (deletion.queuedJobs !== undefined) poolStatus.queuedJobs = deletion.queuedJobs;
  if (absorb.failures.length > 0) poolStatus.absorbFailures = absorb.failures;
  status('RelayPool', observed.poolName, poolStatus);
  desired.events.push(
    ...transitionEvents(original, original.status?.conditions, poolStatus.conditions as Condition[]),
  );
  const issued = tls?.certificate?.issued;
  if (issued && tls?.status)
    desired.events.push({
      regarding: ref(original),
      type: 'Normal',
      reason: issued === 'Missing' ? 'CertificateIssued' : 'CertificateRenewed',
      message: `serving certificate (${issued}) for ${(tls.status.dnsNames ?? []).join(', ')} in Secret ${tls.status.secretName}, valid until ${tls.status.notAfter}`,
    });
  for (const message of inputs.events)
    desired.events.push({
      regarding: ref(original),
      type: 'Normal',
      reason: 'CredentialsGenerated',
      message,
    });
  for (const d of domains.resolved) {
    status('SendingDomain', d.object.metadata.name ?? '', d.status);
    desired.events.push(...transitionEvents(d.object, d.object.status?.conditions, d.conditions));
    for (const e of d.events) desired.events.push({ regarding: ref(d.object), ...e });
  }
  for (const l of limits) {
    status('RateLimit', l.object.metadata.name ?? '', l.status);
    desired.events.push(
      ...transitionEvents(l.object, l.object.status?.conditions, l.status.conditions as Condition[]),
    );
  }
  return desired;
}
