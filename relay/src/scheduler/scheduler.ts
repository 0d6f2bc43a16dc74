// The scheduler: FIFO queues per destination and shaping class, served round-robin under a
// per-destination and a global connection cap and under the RateLimits (shaping/), deferred jobs
// in a heap by retry time. A slow, limited or backed-off destination only ever holds its own
// queue, so it cannot hold up the others. One timer wakes the next retry or limit wait: no polling.
import { DEFAULTS } from '../../../contract/defaults.ts';
import type { RecipientState } from '../spool/record.ts';
import { delayNotified, nextHopDsn, relayNotified } from '../outcomes/dsn-params.ts';
import type { AdaptiveBackoffConfig, RateLimitConfig } from '../config/types.ts';
import type { Spool } from '../spool/store.ts';
import { SpoolDamage, SpooledMessage } from '../spool/spooled-message.ts';
import type { RecipientResult } from '../delivery/results.ts';
import type { DeliveryReport, DeliveryRequest, TlsReport } from '../delivery/deliverer.ts';
import { nextStep, type RetryPolicy } from './retry.ts';
import { MinHeap } from './heap.ts';
import type { Job, QueuedMessage, QueuedRecipient } from './model.ts';
import { Shaper, type BackoffTransition } from '../shaping/shaper.ts';
import { pooledLimits, unshaped, type AppliedLimit, type ShapingClass } from '../shaping/plan.ts';
import type { PoolLimiter } from '../shared-state/rate-limits.ts';
import { shapingPool, type PoolConnectionLeases } from '../shared-state/connection-leases.ts';
import {
  liveJobs,
  newQueue,
  peekReady,
  queueKey,
  takeHead,
  type ReadyQueue,
  type WaitReason,
} from './queues.ts';
import { realTimer, WakeTimer, type SetTimer } from './timer.ts';
import { MxSites } from './mx-sites.ts';

export type FinalOutcome = 'delivered' | 'bounced' | 'expired' | 'handedoff';

export interface OutcomeEvent {
  message: QueuedMessage;
  recipient: QueuedRecipient;
  destination: string;
  host: string;
  /** The TLS policy of the attempt (direct delivery). */
  tls?: TlsReport | undefined;
  outcome: FinalOutcome | 'deferred';
  result: RecipientResult | undefined;
  now: number;
}

/** What the scheduler tells the rest of the relay; main wires it to accounting, metrics and DSNs. */
export interface SchedulerObserver {
  outcome(event: OutcomeEvent): void;
  /** Resolves once what outcome() recorded durably (the events outbox) is on disk. */
  settled?(): Promise<void>;
  attempt(destination: string, durationMs: number): void;
  /** Recipients that bounced or expired in one attempt, for a DSN. */
  failed(message: QueuedMessage, recipients: QueuedRecipient[]): Promise<void>;
  /** Recipients delivered to a next hop without DSN that asked NOTIFY=SUCCESS: a "relayed" DSN. */
  relayed?(message: QueuedMessage, recipients: QueuedRecipient[]): Promise<void>;
  /** NOTIFY=DELAY recipients still deferred past retry.delayWarningAfter: their one "delayed" DSN. */
  delayed?(message: QueuedMessage, recipients: QueuedRecipient[]): Promise<void>;
  finished(message: QueuedMessage, now: number): void;
  error(message: string, fields: Record<string, unknown>): void;
  /** A message at the head of its queue was held back by the named RateLimit. */
  limited?(limit: string): void;
  backoff?(transition: BackoffTransition): void;
}

/** What the scheduler shapes by; replaced on config reload. */
export interface ShapingSettings {
  rateLimits: readonly RateLimitConfig[];
  adaptiveBackoff: AdaptiveBackoffConfig;
  /** Sending domains whose queued mail is held. */
  suspendedDomains: readonly string[];
}

export interface SchedulerLimits {
  maxConnections: number;
  maxConnectionsPerDestination: number;
  retry: RetryPolicy;
}

export interface SchedulerDeps {
  spool: Spool;
  deliver: (request: DeliveryRequest) => Promise<DeliveryReport>;
  observer: SchedulerObserver;
  now: () => number;
  random: () => number;
  /** One-shot timer; setTimeout unless a test injects a fake clock. */
  setTimer?: SetTimer;
  /** MX host names of a recipient domain, for MX-rollup limits. */
  resolveMx?: (domain: string) => Promise<string[]>;
}

export class Scheduler {
  private readonly deps: SchedulerDeps;
  /** Current limits; replaced on config reload. */
  limits: SchedulerLimits;
  /** Token buckets, connection counts and backoff per limit destination. */
  readonly shaper: Shaper;
  /** Decides pool-wide limits in the shared store (RelayPool sharedState); undefined: shares only. */
  poolLimiter: PoolLimiter | undefined;
  /** Leases connections under pool-wide caps in the shared store; undefined: shares only. */
  connectionLeases: PoolConnectionLeases | undefined;
  /** Every message not yet finished, by queue id. */
  readonly messages = new Map<string, QueuedMessage>();
  /** Ready queues by key (destination and shaping class). */
  private queues = new Map<string, ReadyQueue>();
  /** Queues with a job to send and nothing holding them back, in round-robin order. */
  private serviceable = new Set<ReadyQueue>();
  /** Queues held back by a full token bucket, by the instant the bucket has credit again. */
  private rateWaits = new MinHeap<ReadyQueue>();
  /** Queues waiting for a connection to free, by the counter they wait on. */
  private connectionWaits = new Map<string, Set<ReadyQueue>>();
  /** Ready jobs of suspended sending domains, held until a reload un-suspends the domain. */
  private held = new Map<string, Job[]>();
  private suspended = new Set<string>();
  /** The limits in force as JSON, to tell a reload that needs the queues rebuilt. */
  private shapingShape = '';
  private readonly deferred = new MinHeap<Job>();
  /** Attempts running now, all destinations. */
  private inflight = 0;
  /** Attempts running now per destination. */
  private readonly destinationInflight = new Map<string, number>();
  /** While paused (draining) no new attempt starts. */
  private paused = false;
  private readonly timer: WakeTimer;
  private readonly mx: MxSites;
  /** Arrival counter for Job.seq. */
  private seq = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(deps: SchedulerDeps, limits: SchedulerLimits, shaping?: ShapingSettings) {
    this.deps = deps;
    this.limits = limits;
    this.shaper = new Shaper(shaping?.rateLimits ?? [], shaping?.adaptiveBackoff ?? noBackoff);
    this.suspended = new Set(shaping?.suspendedDomains ?? []);
    this.shapingShape = shapeOf(shaping?.rateLimits ?? []);
    this.timer = new WakeTimer(deps.setTimer ?? realTimer, () => this.wake());
    this.mx = new MxSites(deps.resolveMx ?? (() => Promise.resolve([])), deps.now);
  }

  get inflightCount(): number {
    return this.inflight;
  }

  start(): void {
    this.paused = false;
    this.pump();
  }

  stop(): void {
    this.timer.stop();
    this.paused = true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /**
   * New limits, shares, backoff settings or suspended domains. Buckets keep their state; when
   * what the limits match or which domains are suspended changed, the ready queues are rebuilt
   * in arrival order under the new classes.
   */
  configureShaping(shaping: ShapingSettings): void {
    this.shaper.configure(shaping.rateLimits, shaping.adaptiveBackoff);
    const suspended = new Set(shaping.suspendedDomains);
    const shape = shapeOf(shaping.rateLimits);
    const changed =
      shape !== this.shapingShape ||
      suspended.size !== this.suspended.size ||
      [...suspended].some((d) => !this.suspended.has(d));
    this.suspended = suspended;
    this.shapingShape = shape;
    if (changed) this.rebuildQueues();
    this.pump();
  }

  /** Resolves when no attempt is in flight. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  add(message: QueuedMessage): void {
    this.messages.set(message.envelope.id, message);
    for (const job of message.jobs.values()) {
      job.seq = ++this.seq;
      if (job.state === 'deferred') this.deferred.push(job.nextAttemptAt, job);
      else this.enqueueReady(job);
    }
    if (message.jobs.size === 0) void this.finish(message);
    this.pump();
  }

  /** Makes every waiting job of the message ready now. False when the id is unknown. */
  retryNow(id: string): boolean {
    const message = this.messages.get(id);
    if (!message) return false;
    for (const job of message.jobs.values()) {
      if (job.state === 'deferred') this.enqueueReady(job);
    }
    this.pump();
    return true;
  }

  retryAll(): void {
    for (const id of this.messages.keys()) this.retryNow(id);
  }

  /** Removes the message from queue and spool; an attempt in flight finishes but is ignored. */
  async delete(id: string): Promise<boolean> {
    const message = this.messages.get(id);
    if (!message) return false;
    message.deleted = true;
    this.messages.delete(id);
    for (const job of message.jobs.values()) job.state = 'inflight'; // unlinks it from ready/deferred
    await this.deps.spool.remove(id);
    return true;
  }

  /** Jobs per state and destination, for the API and metrics. */
  jobs(): Iterable<Job> {
    const all: Job[] = [];
    for (const m of this.messages.values()) all.push(...m.jobs.values());
    return all;
  }

  /** Why a ready job is not being sent (undefined: it is next in line, or not ready). */
  whyWaiting(job: Job): WaitReason | undefined {
    if (job.state !== 'ready') return undefined;
    if (job.hold) return { reason: job.hold };
    const q = job.queueKey === undefined ? undefined : this.queues.get(job.queueKey);
    return q?.waiting;
  }

  /** Limit destinations a limit holds back now, and those in backoff (the destinations metric). */
  destinationStates(): { rateLimited: number; backedOff: number } {
    const limited = new Set<string>();
    for (const q of this.queues.values()) {
      if (q.waitingOn !== undefined && q.waiting?.reason !== 'destination connections')
        limited.add(q.waitingOn);
    }
    const backedOff = this.shaper.states().filter((s) => s.backoff === 'backoff').length;
    return { rateLimited: limited.size, backedOff };
  }

  private enqueueReady(job: Job): void {
    job.state = 'ready';
    job.queueKey = undefined;
    delete job.hold;
    const message = job.message;
    if (this.suspended.has(message.senderDomain)) {
      job.hold = 'domain suspended';
      let list = this.held.get(message.senderDomain);
      if (!list) this.held.set(message.senderDomain, (list = []));
      list.push(job);
      return;
    }
    let mxHosts: string[] = [];
    if (this.shaper.needsMxHosts) {
      const known = this.mx.hostsOf(job.domain);
      if (known === undefined) {
        job.hold = 'resolving MX';
        this.mx.whenResolved(job.domain, () => {
          if (job.hold === 'resolving MX' && job.state === 'ready' && !message.deleted) {
            this.enqueueReady(job);
            this.pump();
          }
        });
        return;
      }
      mxHosts = known;
    }
    const shaping =
      this.shaper.limitCount === 0
        ? unshaped
        : this.shaper.classify({
            sender: message.envelope.from,
            senderDomain: message.senderDomain,
            recipientDomain: job.domain,
            mxHosts,
          });
    const key = queueKey(job.destination, shaping);
    let q = this.queues.get(key);
    if (!q) {
      q = newQueue(job.destination, shaping);
      this.queues.set(key, q);
    }
    job.queueKey = key;
    q.jobs.push(job);
    if (q.waiting === undefined) this.serviceable.add(q);
  }

  /** Ready jobs re-queued in arrival order, under the current classes and suspensions. */
  private rebuildQueues(): void {
    const ready: Job[] = [];
    for (const q of this.queues.values()) {
      q.dead = true;
      ready.push(...liveJobs(q));
    }
    for (const list of this.held.values()) ready.push(...list.filter((j) => j.state === 'ready'));
    for (const m of this.messages.values()) {
      for (const j of m.jobs.values()) if (j.hold === 'resolving MX' && j.state === 'ready') ready.push(j);
    }
    this.queues = new Map();
    this.serviceable = new Set();
    this.rateWaits = new MinHeap();
    this.connectionWaits = new Map();
    this.held = new Map();
    ready.sort((a, b) => a.seq - b.seq);
    for (const job of ready) if (!job.message.deleted) this.enqueueReady(job);
  }

  private wake(): void {
    const now = this.deps.now();
    while ((this.deferred.peekKey() ?? Infinity) <= now) {
      const [at, job] = this.deferred.pop()!;
      // Stale heap entries (retried early, deleted, rescheduled) are skipped.
      if (job.state !== 'deferred' || job.nextAttemptAt !== at || job.message.deleted) continue;
      this.enqueueReady(job);
    }
    while ((this.rateWaits.peekKey() ?? Infinity) <= now) {
      const [, q] = this.rateWaits.pop()!;
      if (q.dead || q.waiting?.reason !== 'rate limit') continue;
      this.release(q);
    }
    this.pump();
  }

  private release(q: ReadyQueue): void {
    q.waiting = undefined;
    q.waitingOn = undefined;
    if (!q.dead) this.serviceable.add(q);
  }

  private waitForConnection(q: ReadyQueue, on: string, reason: WaitReason): void {
    this.serviceable.delete(q);
    q.waiting = reason;
    q.waitingOn = on;
    let set = this.connectionWaits.get(on);
    if (!set) this.connectionWaits.set(on, (set = new Set()));
    set.add(q);
  }

  private connectionFreed(on: string): void {
    const set = this.connectionWaits.get(on);
    if (!set) return;
    this.connectionWaits.delete(on);
    for (const q of set) if (q.waitingOn === on) this.release(q);
  }

  private pump(): void {
    const now = this.deps.now();
    if (!this.paused) this.serve(now);
    this.timer.arm(minDefined(this.deferred.peekKey(), this.rateWaits.peekKey()), now);
  }

  private serve(now: number): void {
    const { maxConnections, maxConnectionsPerDestination } = this.limits;
    // A queue served is re-added at the end, so this loop visits it again after the others.
    for (const q of this.serviceable) {
      if (this.inflight >= maxConnections) break;
      const job = peekReady(q);
      if (!job) {
        this.serviceable.delete(q);
        if (this.queues.get(q.key) === q) this.queues.delete(q.key);
        continue;
      }
      const destinationBusy = this.destinationInflight.get(q.destination) ?? 0;
      if (destinationBusy >= maxConnectionsPerDestination) {
        this.waitForConnection(q, `dest:${q.destination}`, { reason: 'destination connections' });
        continue;
      }
      if (q.deciding) continue;
      const pooled = this.poolLimiter ? pooledLimits(q.shaping) : [];
      const inStore = pooled.length > 0 && this.poolLimiter!.available;
      const storeLeases = this.connectionLeases?.available === true;
      if (inStore && !q.poolTicket) {
        // Connection caps first: a credit taken from the pool would be wasted while they wait.
        const full = this.shaper.connectionBlock(q.shaping, storeLeases);
        if (full) this.waitForConnection(q, full.id, { reason: 'connection limit', limit: full.limit });
        else this.askPool(q, pooled, now);
        continue;
      }
      const admission = this.shaper.admit(q.shaping, now, inStore, storeLeases);
      if (!admission.admitted) {
        this.deps.observer.limited?.(admission.limit);
        if (admission.reason === 'connection limit') {
          this.waitForConnection(q, admission.id, { reason: 'connection limit', limit: admission.limit });
        } else {
          this.serviceable.delete(q);
          const backoff = q.shaping.limits.some(
            (a) => a.limit.name === admission.limit && this.shaper.backoffOf(a.id).factor < 1,
          );
          q.waiting = { reason: 'rate limit', limit: admission.limit, until: admission.until, backoff };
          q.waitingOn = q.shaping.limits.find((a) => a.limit.name === admission.limit)?.id;
          this.rateWaits.push(admission.until, q);
        }
        continue;
      }
      if (!inStore) for (const a of pooled) this.poolLimiter!.fellBack(a.limit.name);
      q.poolTicket = false;
      takeHead(q);
      this.serviceable.delete(q);
      this.serviceable.add(q);
      this.inflight++;
      this.destinationInflight.set(q.destination, destinationBusy + 1);
      this.shaper.started(q.shaping);
      void this.attempt(job, q.destination, q.shaping);
    }
  }

  /**
   * Asks the shared store for one message's credit under the class's pool-wide limits. The queue
   * waits meanwhile; admitted, it gets a ticket and is served again when its booked slot comes;
   * limited, it waits as for a local bucket; the store failing, it is served again and the limiter, now unavailable, leaves
   * the decision to this relay's share.
   */
  private askPool(q: ReadyQueue, pooled: AppliedLimit[], now: number): void {
    this.serviceable.delete(q);
    q.deciding = true;
    const first = pooled[0]!;
    q.waiting = { reason: 'rate limit', limit: first.limit.name, until: now, backoff: false };
    q.waitingOn = first.id;
    // The pool's numbers before backoff: the store applies the pool's shared backoff factor.
    const requests = pooled.map((a) => ({
      limit: a.limit.name,
      destination: a.destination,
      rate: a.limit.poolRate!,
    }));
    void this.poolLimiter!.decide(requests).then(
      (decision) => {
        q.deciding = false;
        const at = this.deps.now();
        pooled.forEach((a, i) => {
          const t = this.shaper.adoptPoolBackoff(a, decision.factors[i] ?? 1, at);
          if (t) this.deps.observer.backoff?.(t);
        });
        if (q.dead) return;
        if (decision.allowed) {
          q.poolTicket = true;
          if (decision.delayMs <= 0) this.release(q);
          else {
            // Booked ahead: the queue waits for its slot like for a local bucket, ticket in hand.
            const until = this.deps.now() + decision.delayMs;
            q.waiting = { reason: 'rate limit', limit: first.limit.name, until, backoff: false };
            this.rateWaits.push(until, q);
          }
        } else {
          const until = this.deps.now() + decision.waitMs;
          this.deps.observer.limited?.(first.limit.name);
          q.waiting = { reason: 'rate limit', limit: first.limit.name, until, backoff: false };
          this.rateWaits.push(until, q);
        }
        this.pump();
      },
      (err: unknown) => {
        q.deciding = false;
        this.deps.observer.error('shared rate limit decision failed, deciding by this relay’s share', {
          err: String(err),
        });
        if (!q.dead) this.release(q);
        this.pump();
      },
    );
  }

  /** A backoff change of a pool-wide limit destination, told to the other relays through the store. */
  private publishBackoff(shaping: ShapingClass, t: BackoffTransition): void {
    const pooled = shaping.limits.some(
      (a) => a.limit.poolRate && a.limit.name === t.limit && a.destination === t.destination,
    );
    if (pooled && this.poolLimiter)
      void this.poolLimiter.publishBackoff(t.limit, t.destination, t.fromFactor, t.factor);
  }

  private async attempt(job: Job, destination: string, shaping: ShapingClass): Promise<void> {
    job.state = 'inflight';
    job.queueKey = undefined;
    const started = this.deps.now();
    /** A big message read in chunks as it is sent: its file, closed once the attempt is over. */
    let spooled: SpooledMessage | undefined;
    try {
      const message = job.message;
      const body = await this.deps.spool.readMessage(message.envelope.id);
      if (body instanceof SpooledMessage) spooled = body;
      if (!body) {
        // Quarantined by the spool: drop it from the queue, never deliver part of it.
        this.messages.delete(message.envelope.id);
        message.deleted = true;
        return;
      }
      const recipients = job.recipientIndexes.map((i) => message.recipients[i]!.address);
      const request: DeliveryRequest = {
        from: message.envelope.from,
        queueId: message.envelope.id,
        recipients,
        body,
        domain: job.domain,
      };
      const dsn = nextHopDsn(
        message.envelope.dsn,
        job.recipientIndexes.map((i) => ({ index: i, address: message.recipients[i]!.address })),
      );
      if (dsn) request.dsn = dsn;
      if (shaping.maxConnections !== undefined || shaping.maxMessagesPerConnection !== undefined)
        request.pool = shapingPool(shaping, this.connectionLeases);
      const report = await this.deps.deliver(request);
      const now = this.deps.now();
      this.deps.observer.attempt(job.destination, now - started);
      const replies = report.results.map((r) => ({ code: r.code, text: r.reply }));
      for (const t of this.shaper.observe(shaping, replies, now)) {
        this.deps.observer.backoff?.(t);
        this.publishBackoff(shaping, t);
      }
      if (!message.deleted) await this.apply(job, report);
    } catch (err) {
      if (err instanceof SpoolDamage) {
        // Damaged while sent (no end of data went out) and quarantined by the spool: as above.
        this.messages.delete(job.message.envelope.id);
        job.message.deleted = true;
        return;
      }
      this.deps.observer.error('delivery attempt failed', {
        queueId: job.message.envelope.id,
        err: String(err),
      });
      if (!job.message.deleted) this.deferJob(job, this.deps.now());
    } finally {
      spooled?.close();
      this.inflight--;
      const busy = (this.destinationInflight.get(destination) ?? 1) - 1;
      if (busy <= 0) this.destinationInflight.delete(destination);
      else this.destinationInflight.set(destination, busy);
      this.shaper.finished(shaping);
      this.connectionFreed(`dest:${destination}`);
      for (const a of shaping.limits) this.connectionFreed(a.id);
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }

  /** Records what one attempt did to each recipient and reschedules what is left. */
  async apply(job: Job, report: DeliveryReport): Promise<void> {
    const message = job.message;
    const now = this.deps.now();
    job.attempts++;
    const byAddress = new Map(report.results.map((r) => [r.recipient, r]));
    const changed: RecipientState[] = [];
    const failed: QueuedRecipient[] = [];
    const relayed: QueuedRecipient[] = [];
    const delayed: QueuedRecipient[] = [];
    const warnAfter = this.limits.retry.delayWarningAfterMs ?? 0;
    const warnNow = warnAfter > 0 && now - message.envelope.receivedAt >= warnAfter;
    const stillPending: number[] = [];
    const step = nextStep(
      { attempts: job.attempts, receivedAt: message.envelope.receivedAt, now },
      this.limits.retry,
      this.deps.random,
    );
    for (const index of job.recipientIndexes) {
      const recipient = message.recipients[index]!;
      const result = byAddress.get(recipient.address);
      recipient.attempts = job.attempts;
      if (result) recipient.reply = result.reply;
      let outcome: OutcomeEvent['outcome'] = result?.outcome ?? 'deferred';
      if (outcome === 'deferred' && step.kind === 'expire') outcome = 'expired';
      recipient.status = outcome;
      if (outcome === 'deferred') stillPending.push(index);
      if (outcome === 'bounced' || outcome === 'expired') failed.push(recipient);
      if (outcome === 'delivered' && relayNotified(message.envelope.dsn, index, report.nextHopDsn === true))
        relayed.push(recipient);
      const state: RecipientState = { index, status: outcome, attempts: job.attempts };
      if (recipient.reply) state.reply = recipient.reply;
      if (outcome === 'deferred' && step.kind === 'retry') state.nextAttemptAt = step.at;
      if (
        outcome === 'deferred' &&
        warnNow &&
        !recipient.delayNotified &&
        delayNotified(message.envelope.dsn, index)
      ) {
        recipient.delayNotified = true;
        delayed.push(recipient);
      }
      if (recipient.delayNotified) state.delayNotified = true;
      changed.push(state);
      this.deps.observer.outcome({
        message,
        recipient,
        destination: job.destination,
        host: report.host,
        tls: report.tls,
        outcome,
        result,
        now,
      });
    }
    // Before the final states reach the spool: a crash in between repeats the delivery and its
    // event (same idempotency key), never a delivery whose event is lost.
    await this.deps.observer.settled?.();
    job.recipientIndexes = stillPending;
    if (stillPending.length === 0) message.jobs.delete(job.destination);
    // Awaited: the DSN quotes the original headers, which finish() is about to delete.
    if (failed.length > 0) await this.deps.observer.failed(message, failed);
    if (relayed.length > 0) await this.deps.observer.relayed?.(message, relayed);
    // Queued (stored and fsynced) before the state that says so: a crash in between sends a
    // second warning, never none.
    if (delayed.length > 0) await this.deps.observer.delayed?.(message, delayed);
    if (message.jobs.size === 0) {
      await this.finish(message);
      return;
    }
    // A final state must survive a crash (no second delivery); a deferral only loses its timer.
    const durable = changed.some((s) => s.status !== 'deferred') || delayed.length > 0;
    await this.deps.spool.recordStates(message.envelope.id, changed, durable);
    if (stillPending.length > 0 && step.kind === 'retry') {
      job.lastReply = changed[changed.length - 1]?.reply ?? '';
      job.state = 'deferred';
      job.nextAttemptAt = step.at;
      this.deferred.push(step.at, job);
    }
  }

  private deferJob(job: Job, now: number): void {
    job.state = 'deferred';
    job.nextAttemptAt = now + this.limits.retry.firstRetryMs;
    this.deferred.push(job.nextAttemptAt, job);
  }

  /** Marks recipients handed to a peer relay, then drops the message when nothing is left. */
  async markHandedOff(message: QueuedMessage, results: RecipientResult[], host: string): Promise<void> {
    const now = this.deps.now();
    const accepted = new Set(results.filter((r) => r.outcome === 'delivered').map((r) => r.recipient));
    const changed: RecipientState[] = [];
    for (const job of [...message.jobs.values()]) {
      job.recipientIndexes = job.recipientIndexes.filter((index) => {
        const recipient = message.recipients[index]!;
        if (!accepted.has(recipient.address)) return true;
        recipient.status = 'handedoff';
        changed.push({ index, status: 'handedoff', attempts: recipient.attempts });
        const result = results.find((r) => r.recipient === recipient.address);
        this.deps.observer.outcome({
          message,
          recipient,
          destination: 'handoff',
          host,
          outcome: 'handedoff',
          result,
          now,
        });
        return false;
      });
      if (job.recipientIndexes.length === 0) message.jobs.delete(job.destination);
    }
    if (message.jobs.size === 0) await this.finish(message);
    else await this.deps.spool.recordStates(message.envelope.id, changed, true);
  }

  private async finish(message: QueuedMessage): Promise<void> {
    this.messages.delete(message.envelope.id);
    await this.deps.spool.remove(message.envelope.id);
    this.deps.observer.finished(message, this.deps.now());
  }
}

/** A scheduler built without shaping settings (tests): backoff off, whatever replies come. */
const noBackoff: AdaptiveBackoffConfig = {
  ...DEFAULTS.adaptiveBackoff,
  enabled: false,
  throttlePatterns: [],
};

/** Any change to the limits rebuilds the queues, whose classes hold the compiled limits. */
function shapeOf(limits: readonly RateLimitConfig[]): string {
  return JSON.stringify(limits);
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
