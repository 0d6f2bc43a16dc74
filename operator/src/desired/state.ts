// desiredState(observed): everything a RelayPool should be (children, statuses, events), as a
// function of what the reconcile observed. No client, no clock, no randomness of its own.
import { stringify } from 'yaml';
import { conditionTransitions, mergeConditions } from '../api/conditions.ts';
import type { ConditionInput } from '../api/conditions.ts';
import { withDefaults } from '../api/defaults.ts';
import { deployment } from './deployment.ts';
import { resolveDomains } from './domains.ts';
import { horizontalPodAutoscaler } from './hpa.ts';
import { poolInputs } from './inputs.ts';
import type { PoolInputs } from './inputs.ts';
import { childMeta, names, selectorLabels } from './meta.ts';
import { networkPolicy } from './networkpolicy.ts';
import { podDisruptionBudget } from './pdb.ts';
import { resolveRateLimits } from './ratelimits.ts';
import { renderRelayConfig, restartChecksum } from './relayconfig.ts';
import { relaySecret } from './secret.ts';
import { endpoint, headlessService, service } from './service.ts';
import { serviceMonitor } from './servicemonitor.ts';
import { statefulSet } from './statefulset.ts';
import type { Desired, EventSpec, Generators, KubeObject, Observed, OwnKind } from './types.ts';
import type { Condition } from '../api/types.ts';

type Workload = { replicas: number; readyReplicas: number; updatedReplicas: number; current: boolean };

function workloadStatus(observed: Observed, kind: string): Workload | undefined {
  const child = observed.children.find(
    (c) => c.kind === kind && c.metadata?.name === names.workload(observed.poolName),
  );
  if (!child) return undefined;
  const status = (child.status ?? {}) as Record<string, number | undefined>;
  const generation = child.metadata?.generation ?? 0;
  return {
    replicas: status.replicas ?? 0,
    readyReplicas: status.readyReplicas ?? 0,
    updatedReplicas: status.updatedReplicas ?? 0,
    current: (status.observedGeneration ?? 0) >= generation,
  };
}

const cond = (
  type: string,
  status: ConditionInput['status'],
  reason: string,
  message: string,
): ConditionInput => ({
  type,
  status,
  reason,
  message,
});

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
  const bad = (c: Condition) =>
    c.type === 'Degraded' || c.type === 'Suspended' ? c.status === 'True' : c.status === 'False';
  return conditionTransitions(before, after)
    .filter(({ condition }) => {
      const previous = before?.find((c) => c.type === condition.type);
      if (STARTING.has(condition.reason) && (!previous || STARTING.has(previous.reason))) return false;
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
    }
    for (const l of resolveRateLimits(observed, 0))
      status('RateLimit', l.object.metadata.name ?? '', l.status);
    return desired;
  }

  const original = observed.pool;
  const { resource: pool, problems } = withDefaults(original);
  const persistent = pool.spec.queue?.persistence !== undefined;
  const workload = workloadStatus(observed, persistent ? 'StatefulSet' : 'Deployment');
  const wanted = pool.spec.replicas ?? 2;
  const ready = workload?.readyReplicas ?? 0;

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
    : poolInputs(pool, observed, gen);
  const poolConditions: ConditionInput[] = [];
  const rolledOut =
    workload !== undefined &&
    workload.current &&
    workload.updatedReplicas >= wanted &&
    workload.replicas === wanted;
  const poolReady = !inputs.problem && rolledOut && ready >= wanted;

  const domains = resolveDomains(observed, gen, inputs.problem?.message, pool.spec.delivery?.ehloName);
  const limits = resolveRateLimits(observed, ready);

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
  } else {
    desired.prune = true;
    desired.create.push(...inputs.create, ...domains.creates);
    desired.keep.push(...inputs.keep);
    const bound = domains.resolved.filter((d) => d.bound);
    const config = renderRelayConfig({
      pool,
      domains: bound.map((d) => d.bound!),
      rateLimits: limits.flatMap((l) => (l.rule ? [l.rule] : [])),
      hasUsers: inputs.users !== undefined,
      hasSmarthostCredentials: inputs.smarthost !== undefined,
    });
    const checksum = restartChecksum(config);
    const image = pool.spec.image ?? observed.settings.image;
    desired.apply.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: childMeta(pool, names.config(observed.poolName), 'config'),
      data: { 'relay.yaml': stringify(config) },
    });
    const secretOptions: Parameters<typeof relaySecret>[0] = {
      pool,
      dkimKeys: bound.map((d) => ({
        domain: d.bound!.domain,
        selector: d.bound!.dkim!.selector,
        pem: d.pem ?? '',
      })),
    };
    if (inputs.users) secretOptions.users = inputs.users;
    if (inputs.smarthost) secretOptions.smarthost = inputs.smarthost;
    desired.apply.push(relaySecret(secretOptions) as KubeObject);
    desired.apply.push(
      (persistent
        ? statefulSet({ pool, image, checksum })
        : deployment({ pool, image, checksum })) as KubeObject,
    );
    if (persistent) desired.apply.push(headlessService(pool) as KubeObject);
    const optional = [
      service(pool),
      podDisruptionBudget(pool),
      horizontalPodAutoscaler(pool),
      serviceMonitor(pool, observed.serviceMonitorCRD),
      networkPolicy(pool),
    ];
    for (const child of optional) if (child) desired.apply.push(child as KubeObject);
    for (const d of domains.resolved) {
      const name = d.object.metadata.name ?? '';
      if (d.suspendNow !== undefined) desired.suspend.push({ name, message: d.suspendNow });
      if (d.resumed) desired.resume.push(name);
    }

    const progress = `${ready}/${wanted} relays ready, ${workload?.updatedReplicas ?? 0} up to date`;
    poolConditions.push(
      poolReady
        ? cond('Ready', 'True', 'RelaysReady', progress)
        : cond('Ready', 'False', workload ? 'RelaysNotReady' : 'WorkloadPending', progress),
      rolledOut && ready >= wanted
        ? cond('Progressing', 'False', 'RolloutComplete', progress)
        : cond('Progressing', 'True', 'RollingOut', progress),
      cond('Degraded', 'False', 'AsExpected', 'no problem detected'),
    );
  }

  const poolStatus: Record<string, unknown> = {
    observedGeneration: original.metadata.generation,
    conditions: mergeConditions(
      original.status?.conditions,
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
  };
  status('RelayPool', observed.poolName, poolStatus);
  desired.events.push(
    ...transitionEvents(original, original.status?.conditions, poolStatus.conditions as Condition[]),
  );
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
  }
  for (const l of limits) {
    status('RateLimit', l.object.metadata.name ?? '', l.status);
    desired.events.push(
      ...transitionEvents(l.object, l.object.status?.conditions, l.status.conditions as Condition[]),
    );
  }
  return desired;
}
