// One pool's reconcile: gather (caches + GETs of referenced Secrets) -> desiredState -> apply
// (only what differs) -> prune -> status (only when it differs) -> events.
import type { V1Secret } from '@kubernetes/client-node';
import type { KubeClient } from '../kube/client.ts';
import type { Writer } from '../kube/writer.ts';
import type { Logger } from '../../../contract/log.ts';
import { OperatorError, errorCode } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import { controlledBy, mustRecreateStatefulSet } from '../desired/ownership.ts';

import { desiredState } from '../desired/state.ts';
import type {
  CertificateIssuer,
  Desired,
  Generators,
  IssuedTls,
  KubeObject,
  Observed,
  WriteProblem,
} from '../desired/types.ts';
import { tlsRequest } from '../desired/tls.ts';
import { withDefaults } from '../api/defaults.ts';
import { prepare, recordingGenerators, replayingGenerators, requested } from '../kube/generators.ts';
import type { SlowGenerators } from '../kube/generators.ts';
import { OWNED_KINDS, objectPath } from '../kube/resources.ts';
import { names, selectorLabels } from '../desired/meta.ts';
import { APPLIED_HASH, isSubset, mergePatch, needsApply, withAppliedHash } from '../kube/diff.ts';
import type { RateLimit, RelayPool, SendingDomain } from '../api/types.ts';
import { AUTOSUSPEND_ANNOTATION } from '../desired/bounce.ts';
import type { BounceMeasurement } from '../desired/bounce.ts';
import type { TxtAnswers } from '../desired/dns.ts';
import {
  domainIndexKey,
  domainSecretRefs,
  handOffIndexKey,
  poolIndexKey,
  poolSecretRefs,
} from './cache-index.ts';
import type { HandOffTarget } from '../desired/handoff-to.ts';
import type { Lookup } from './cache-index.ts';
import { statusKey } from '../kube/status-memo.ts';
import type { RolloutSlots } from './rollouts.ts';
import type { StatusMemo } from '../kube/status-memo.ts';
import { splitScraped, type ScrapedPod } from '../desired/scraped.ts';
import type { DomainCounts } from '../desired/rates.ts';

export type ReconcileContext = {
  client: KubeClient;
  writer: Writer;
  log: Logger;
  generators: Generators;
  /** Issues generated certificates; without one, pools with generated TLS stay CertificatePending. */
  issuer?: CertificateIssuer;
  lookup: Lookup;
  /** Statuses this operator wrote that the cache may not show yet. */
  statuses?: StatusMemo;
  serviceMonitorCRD: boolean;
  certManagerCRD?: boolean;
  settings: Observed['settings'];
  /** Bounce measurements by SendingDomain name (the relay scraper's). */
  bounce?: (namespace: string, pool: string, domains: SendingDomain[]) => Map<string, BounceMeasurement>;
  dns?: (domains: SendingDomain[]) => Promise<Map<string, TxtAnswers>>;
  /** The last hour's counts by SendingDomain name (the scraper's, for status.rates). */
  rates?: (namespace: string, pool: string, domains: SendingDomain[]) => Map<string, DomainCounts>;
  now?: () => Date;
  /** Each relay and tracker pod of a pool and its last reading (the scraper's); absent: not scraped. */
  scrapedPods?: (namespace: string, pool: string) => ScrapedPod[];
  /** Rollout slots shared by every pool (--max-concurrent-rollouts); absent: no limit. */
  rollouts?: RolloutSlots;
  /** The slow generators, run off the event loop between a pass's two decisions. */
  slow?: SlowGenerators;
};

/**
 * New DKIM keys one pass makes at most (each RSA key takes a thread-pool thread for a while). Every
 * pass also re-applies the relay Secret shards its keys changed, so fewer, larger passes finish
 * sooner (docs/benchmarks-operator.md, keys per pass).
 */
const MAX_NEW_KEYS_PER_PASS = 64;

/**
 * desiredState with its slow inputs prepared off the event loop: decide with recording generators;
 * if that asked for keys or password hashes, make them asynchronously (at most
 * MAX_NEW_KEYS_PER_PASS keys) and decide again with them. `pendingKeys`: keys left for a later pass.
 */
async function decide(
  ctx: ReconcileContext,
  observed: Observed,
): Promise<{ desired: Desired; pendingKeys: number; hashes: Map<string, string> }> {
  const recording = recordingGenerators(ctx.generators);
  const first = desiredState(observed, recording.gen);
  if (!requested(recording.requests)) return { desired: first, pendingKeys: 0, hashes: new Map() };
  const slow: SlowGenerators = ctx.slow ?? {
    dkimKey: async (algorithm) => ctx.generators.dkimKey(algorithm) ?? '',
    hashPassword: async (password) => ctx.generators.hashPassword(password),
  };
  const prepared = await prepare(recording.requests, slow, MAX_NEW_KEYS_PER_PASS);
  return {
    desired: desiredState(observed, replayingGenerators(recording.requests, prepared, ctx.generators)),
    pendingKeys: recording.requests.keys.length - prepared.keys.length,
    hashes: prepared.hashes,
  };
}

const id = (o: { kind?: string; metadata?: { name?: string } }) => `${o.kind}/${o.metadata?.name ?? ''}`;

/** The Secrets a pool and its domains name, which are not labelled as ours (so not cached). */
function referencedSecrets(pool: RelayPool | undefined, domains: SendingDomain[]): string[] {
  return [...new Set([...poolSecretRefs(pool), ...domains.flatMap(domainSecretRefs)])];
}

async function gather(ctx: ReconcileContext, namespace: string, poolName: string): Promise<Observed> {
  const { lookup } = ctx;
  const ofPool = poolIndexKey(namespace, poolName);
  // Our own status writes the watch has not echoed yet are part of what we observe: deciding from
  // the stale copy would write the same status again (with a new transition time).
  const withOurStatus = <T extends KubeObject>(kind: string, object: T | undefined): T | undefined => {
    if (!object || !ctx.statuses) return object;
    const key = statusKey(kind, namespace, object.metadata?.name ?? '');
    const status = ctx.statuses.baseline(key, {
      resourceVersion: object.metadata?.resourceVersion,
      status: object.status,
    });
    return status === object.status ? object : { ...object, status };
  };
  const pool = withOurStatus('RelayPool', lookup.get('RelayPool', namespace, poolName)) as unknown as
    RelayPool | undefined;
  const domains = lookup
    .indexed('SendingDomain', ofPool)
    .map((d) => withOurStatus('SendingDomain', d)) as unknown as SendingDomain[];
  const rateLimits = lookup
    .indexed('RateLimit', ofPool)
    .map((l) => withOurStatus('RateLimit', l)) as unknown as RateLimit[];
  // Our own Secrets of this pool and its domains' generated keys, then whatever else the specs name.
  const secrets = new Map<string, V1Secret>();
  const own = [
    ...lookup.indexed('Secret', ofPool),
    ...domains.flatMap((d) => lookup.indexed('Secret', domainIndexKey(namespace, d.metadata.name ?? ''))),
  ];
  for (const s of own) secrets.set(s.metadata?.name ?? '', s as V1Secret);
  for (const name of referencedSecrets(pool, domains)) {
    if (secrets.has(name)) continue;
    const cached = lookup.get('Secret', namespace, name);
    if (cached) {
      secrets.set(name, cached as V1Secret);
      continue;
    }
    try {
      secrets.set(
        name,
        await ctx.client.request<V1Secret>('GET', objectPath('Secret', namespace, name), { verb: 'get' }),
      );
    } catch (error) {
      if (!(error instanceof OperatorError && error.status === 404)) throw error;
    }
  }
  const children = OWNED_KINDS.flatMap((kind) => lookup.indexed(kind, ofPool));
  const claims = lookup.indexed('PersistentVolumeClaim', ofPool);
  const pods = lookup.indexed('Pod', ofPool).map((p) => p.metadata?.name ?? '');
  const observed: Observed = {
    namespace,
    poolName,
    domains,
    rateLimits,
    secrets,
    children,
    claims,
    pods,
    serviceMonitorCRD: ctx.serviceMonitorCRD,
    certManagerCRD: ctx.certManagerCRD ?? false,
    bounce: ctx.bounce?.(namespace, poolName, domains) ?? new Map(),
    dns: ctx.dns ? await ctx.dns(domains) : new Map(),
    settings: ctx.settings,
    now: ctx.now?.() ?? new Date(),
  };
  if (pool) observed.pool = pool;
  const handOffTo = pool?.spec?.deletionHandOffTo;
  if (handOffTo) observed.handOffTarget = handOffTarget(lookup, namespace, handOffTo);
  observed.handOffSources = lookup.indexed(
    'RelayPool',
    handOffIndexKey(namespace, poolName),
  ) as unknown as RelayPool[];
  if (ctx.scrapedPods) {
    const { relays, trackers } = splitScraped(ctx.scrapedPods(namespace, poolName));
    observed.relayQueues = relays;
    observed.trackers = trackers;
  }
  if (ctx.rates) observed.rates = ctx.rates(namespace, poolName, domains);
  return observed;
}

/** The pool a pool's spec.deletionHandOffTo names, and how many of its relays are Ready. */
function handOffTarget(lookup: Lookup, namespace: string, name: string): HandOffTarget {
  const pool = lookup.get('RelayPool', namespace, name) as unknown as RelayPool | undefined;
  const relay = selectorLabels(name);
  const readyRelays = lookup.indexed('Pod', poolIndexKey(namespace, name)).filter(
    (p) =>
      // Its relays, not its tracker or absorb pods.
      Object.entries(relay).every(([k, v]) => p.metadata?.labels?.[k] === v) &&
      !p.metadata?.deletionTimestamp &&
      ((p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some(
        (c) => c.type === 'Ready' && c.status === 'True',
      ),
  ).length;
  return pool ? { pool, readyRelays } : { readyRelays };
}

/**
 * Issues the certificates tlsRequest() asks for, into observed.issued, where desiredState takes
 * them. Done before each decision: after a create conflict the stored CA may not be the one a
 * certificate was just signed with.
 */
async function issueCertificates(ctx: ReconcileContext, observed: Observed): Promise<void> {
  delete observed.issued;
  if (!observed.pool || !ctx.issuer) return;
  const { resource: pool, problems } = withDefaults(observed.pool);
  const request = problems.length ? undefined : tlsRequest(pool, observed);
  if (!request) return;
  const issued: IssuedTls = {};
  if (request.ca) issued.ca = await ctx.issuer.ca(request.ca);
  const ca = issued.ca ?? request.serving?.ca;
  if (request.serving && ca) issued.serving = await ctx.issuer.serving(request.serving.request, ca);
  observed.issued = issued;
}

export async function reconcilePool(
  ctx: ReconcileContext,
  namespace: string,
  poolName: string,
): Promise<{ observed: Observed; desired: Desired; pendingKeys: number }> {
  const observed = await gather(ctx, namespace, poolName);
  await issueCertificates(ctx, observed);
  let { desired, pendingKeys, hashes } = await decide(ctx, observed);
  // A changed pod template needs a rollout slot; taken synchronously right after the decision, so
  // concurrent reconciles never take more than there are. Without one, decide again, queued.
  const poolKey = `${namespace}/${poolName}`;
  if (desired.rollout?.wanted && ctx.rollouts && !ctx.rollouts.reserve(poolKey, Date.now())) {
    observed.rolloutQueued = true;
    ({ desired, pendingKeys, hashes } = await decide(ctx, observed));
  }
  // The finalizer goes on before the relays it protects are written.
  if (desired.finalizer && 'add' in desired.finalizer) await writeFinalizer(ctx, observed, desired.finalizer);
  const byId = new Map(observed.children.map((c) => [id(c), c]));
  // A create answered 409 means the object exists and our cache has not seen it (a pass that ran
  // before the watch echoed our own create, or a Secret someone else made under that name). This
  // pass generated a key or password that is not the stored one: read the stored Secret and decide
  // again, or the relay Secret would carry the wrong key until the next pass.
  // Writes that do not depend on each other go out together: a reconcile costs a few round
  // trips instead of one per object (docs/benchmarks-operator.md).
  for (let attempt = 1; ; attempt++) {
    const pending = desired.create.filter(
      (object) => !byId.has(id(object)) && !observed.secrets.has(object.metadata?.name ?? ''),
    );
    const outcomes = await Promise.all(
      pending.map(async (object) => ({ object, created: await ctx.writer.createIfAbsent(object) })),
    );
    const conflicts: string[] = [];
    for (const { object, created } of outcomes) {
      const name = object.metadata?.name ?? '';
      if (created) {
        ctx.log('info', 'created', { kind: object.kind, name });
        // What we just stored is what a second decision below must use.
        if (object.kind === 'Secret') observed.secrets.set(name, object as V1Secret);
        continue;
      }
      if (object.kind !== 'Secret' || attempt > 1)
        throw new OperatorError('API_CONFLICT', `${id(object)} exists but is not in the cache yet`, 409);
      conflicts.push(name);
    }
    if (conflicts.length === 0) break;
    for (const name of conflicts)
      observed.secrets.set(
        name,
        await ctx.client.request<V1Secret>('GET', objectPath('Secret', namespace, name), { verb: 'get' }),
      );
    await issueCertificates(ctx, observed);
    ({ desired, pendingKeys, hashes } = await decide(ctx, observed));
  }
  const wanted = new Set<string>([...desired.keep, ...desired.create.map(id)]);
  for (const object of desired.apply) wanted.add(id(object));
  const poolUid = observed.pool?.metadata.uid;
  const changed = desired.apply
    .map(withAppliedHash)
    .filter((hashed) => needsApply(hashed, byId.get(id(hashed))));
  const problems: (WriteProblem & { code: ErrorCode })[] = [];
  // What the pods mount is applied before the workload that mounts it; a mounted object that could
  // not be written holds the workload back (its pods would roll to a config that is not there).
  const mounted = (o: KubeObject) => o.kind === 'ConfigMap' || o.kind === 'Secret';
  for (const batch of [changed.filter(mounted), changed.filter((o) => !mounted(o))]) {
    if (problems.length) break;
    const found = await Promise.all(
      batch.map((hashed) => applyChild(ctx, namespace, poolUid, hashed, byId.get(id(hashed)))),
    );
    for (const problem of found) if (problem) problems.push(problem);
  }
  if (desired.prune && problems.length === 0) {
    await Promise.all(
      observed.children
        // Only what this pool controls: an object that merely carries our labels is not ours.
        .filter((child) => !wanted.has(id(child)) && controlledBy(child, poolUid))
        .map(async (child) => {
          await ctx.writer.delete(child.kind ?? '', namespace, child.metadata?.name ?? '');
          ctx.log('info', 'pruned', { kind: child.kind, name: child.metadata?.name });
        }),
    );
  }
  if (problems.length) {
    // Decide again knowing what could not be written: the pool's status says so.
    for (const problem of problems) ctx.log('warn', 'not written', { ...problem });
    // Everything this pass created is in `observed` now: no new key is made, hashes are reused.
    desired = desiredState(
      { ...observed, writeProblems: problems },
      replayingGenerators({ passwords: [], hashes: [], keys: [] }, { keys: [], hashes }, ctx.generators),
    );
  }
  for (const { name, message } of desired.suspend) {
    await ctx.writer.patchSpec(
      'SendingDomain',
      namespace,
      name,
      { suspend: true },
      {
        [AUTOSUSPEND_ANNOTATION]: message,
      },
    );
    ctx.log('warn', 'suspended sending domain', { domain: name, reason: message });
  }
  for (const name of desired.resume) {
    await ctx.writer.patchSpec('SendingDomain', namespace, name, {}, { [AUTOSUSPEND_ANNOTATION]: null });
    ctx.log('info', 'sending domain resumed', { domain: name });
  }
  const current = (kind: string, name: string) =>
    kind === 'RelayPool'
      ? observed.pool
      : [...observed.domains, ...observed.rateLimits].find(
          (o) => o.kind === kind && o.metadata.name === name,
        );
  await Promise.all(
    desired.statuses.map(async (write) => {
      const object = current(write.kind, write.name);
      const key = statusKey(write.kind, namespace, write.name);
      const version = object?.metadata.resourceVersion;
      const before = object?.status;
      // Compare both ways: the status is replaced as a whole, so equal means nothing to write.
      if (
        before &&
        isSubset(write.status, before) &&
        isSubset(before, JSON.parse(JSON.stringify(write.status)))
      )
        return;
      try {
        await ctx.writer.patchStatus(write.kind, namespace, write.name, mergePatch(before, write.status));
        ctx.statuses?.remember(key, version, JSON.parse(JSON.stringify(write.status)));
      } catch (error) {
        if (!(error instanceof OperatorError && error.status === 404)) throw error;
      }
    }),
  );
  // Off only once the status that says why is written.
  if (desired.finalizer && 'remove' in desired.finalizer)
    await writeFinalizer(ctx, observed, desired.finalizer);
  await Promise.all(
    desired.events.map((event) =>
      ctx.writer
        .event(event, observed.now)
        .catch((error) =>
          ctx.log('warn', 'event not recorded', { reason: event.reason, error: String(error) }),
        ),
    ),
  );
  if (observed.pool) ctx.log('debug', 'reconciled', { workload: names.workload(poolName) });
  // Rolled out (or gone, or nothing to roll): the slot goes to the next pool.
  if (!(desired.rollout?.wanted || desired.rollout?.inProgress)) ctx.rollouts?.release(poolKey);
  // The pass is retried with the error policy's backoff (the user may fix the cause at any time).
  const first = problems[0];
  if (first)
    throw new OperatorError(
      first.reason === 'NotOwned' ? 'NOT_OWNED' : first.code,
      `${first.object}: ${first.message}`,
    );
  return { observed, desired, pendingKeys };
}

async function writeFinalizer(
  ctx: ReconcileContext,
  observed: Observed,
  change: NonNullable<Desired['finalizer']>,
): Promise<void> {
  const current = observed.pool?.metadata.finalizers ?? [];
  try {
    await ctx.writer.finalizer('RelayPool', observed.namespace, observed.poolName, change, current);
  } catch (error) {
    if (error instanceof OperatorError && error.status === 404) return;
    throw error;
  }
  ctx.log('info', 'add' in change ? 'finalizer added' : 'finalizer removed', {
    pool: observed.poolName,
    finalizer: 'add' in change ? change.add : change.remove,
  });
}

/**
 * Applies one child, unless it exists and this pool does not control it (an object a user made
 * under the same name is never taken over). An object missing from our cache is looked up first,
 * from the API server's watch cache: our caches hold only what carries our labels. A refusal by the
 * API server (invalid, forbidden: an admission policy, a quota) is a problem to report; anything
 * else fails the pass.
 */
async function applyChild(
  ctx: ReconcileContext,
  namespace: string,
  poolUid: string | undefined,
  hashed: KubeObject,
  cached: KubeObject | undefined,
): Promise<(WriteProblem & { code: ErrorCode }) | undefined> {
  const kind = hashed.kind ?? '';
  const name = hashed.metadata?.name ?? '';
  try {
    const existing =
      cached ??
      (await ctx.client
        .request<KubeObject>('GET', objectPath(kind, namespace, name), {
          verb: 'get',
          query: { resourceVersion: '0' },
        })
        .catch((error: unknown) => {
          if (error instanceof OperatorError && error.status === 404) return undefined;
          throw error;
        }));
    if (existing && !controlledBy(existing, poolUid))
      return {
        object: id(hashed),
        reason: 'NotOwned',
        code: 'NOT_OWNED',
        message:
          'exists and is not controlled by this RelayPool; delete or rename it and the pool creates its own',
      };
    if (existing && mustRecreateStatefulSet(hashed, existing)) {
      // Created again, adopting the orphaned pods and their claims, once the deletion is seen.
      await ctx.writer.delete(kind, namespace, name, 'Orphan');
      ctx.log('info', 'recreating with new volume claim templates', { kind, name });
      return undefined;
    }
    await ctx.writer.apply(hashed);
    ctx.log('info', 'applied', { kind, name, hash: hashed.metadata?.annotations?.[APPLIED_HASH] });
    return undefined;
  } catch (error) {
    const code = errorCode(error);
    if (code !== 'API_INVALID' && code !== 'API_FORBIDDEN') throw error;
    return {
      object: id(hashed),
      reason: 'ApplyFailed',
      code,
      message: String((error as Error).message).slice(0, 400),
    };
  }
}
