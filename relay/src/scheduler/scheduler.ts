// The scheduler: per-destination FIFO queues served round-robin under a per-destination and a
// global connection cap, deferred jobs in a heap by retry time. A slow destination only ever
// holds its own slots, so it cannot hold up the others.
import type { RecipientState } from '../spool/record.ts';
import type { Spool } from '../spool/store.ts';
import type { RecipientResult } from '../delivery/results.ts';
import type { DeliveryReport, DeliveryRequest } from '../delivery/deliverer.ts';
import { nextStep, type RetryPolicy } from './backoff.ts';
import { MinHeap } from './heap.ts';
import type { Job, QueuedMessage, QueuedRecipient } from './model.ts';

export type FinalOutcome = 'delivered' | 'bounced' | 'expired' | 'handedoff';

export interface OutcomeEvent {
  message: QueuedMessage;
  recipient: QueuedRecipient;
  destination: string;
  host: string;
  outcome: FinalOutcome | 'deferred';
  result: RecipientResult | undefined;
  now: number;
}

/** What the scheduler tells the rest of the relay; main wires it to accounting, metrics and DSNs. */
export interface SchedulerObserver {
  outcome(event: OutcomeEvent): void;
  attempt(destination: string, durationMs: number): void;
  /** Recipients that bounced or expired in one attempt, for a DSN. */
  failed(message: QueuedMessage, recipients: QueuedRecipient[]): Promise<void>;
  finished(message: QueuedMessage, now: number): void;
  error(message: string, fields: Record<string, unknown>): void;
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
}

interface DestinationQueue {
  ready: Job[];
  /** Index of the first live entry in `ready` (cheap FIFO without shift()). */
  head: number;
  inflight: number;
}

export class Scheduler {
  private readonly deps: SchedulerDeps;
  /** Current limits; replaced on config reload. */
  limits: SchedulerLimits;
  /** Every message not yet finished, by queue id. */
  readonly messages = new Map<string, QueuedMessage>();
  private readonly queues = new Map<string, DestinationQueue>();
  /** Destinations with at least one ready job, in round-robin order. */
  private readonly readyDestinations = new Set<string>();
  private readonly deferred = new MinHeap<Job>();
  /** Attempts running now, all destinations. */
  private inflight = 0;
  /** While paused (draining) no new attempt starts. */
  private paused = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(deps: SchedulerDeps, limits: SchedulerLimits) {
    this.deps = deps;
    this.limits = limits;
  }

  get inflightCount(): number {
    return this.inflight;
  }

  start(): void {
    this.timer = setInterval(() => this.wakeDeferred(), 200);
    this.timer.unref();
    this.pump();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.paused = true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
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
      if (job.state === 'deferred') this.deferred.push(job.nextAttemptAt, job);
      else this.enqueueReady(job);
    }
    if (message.jobs.size === 0) this.finish(message);
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

  private enqueueReady(job: Job): void {
    job.state = 'ready';
    let q = this.queues.get(job.destination);
    if (!q) {
      q = { ready: [], head: 0, inflight: 0 };
      this.queues.set(job.destination, q);
    }
    q.ready.push(job);
    this.readyDestinations.add(job.destination);
  }

  private wakeDeferred(): void {
    const now = this.deps.now();
    let woke = false;
    while ((this.deferred.peekKey() ?? Infinity) <= now) {
      const [at, job] = this.deferred.pop()!;
      // Stale heap entries (retried early, deleted, rescheduled) are skipped.
      if (job.state !== 'deferred' || job.nextAttemptAt !== at || job.message.deleted) continue;
      this.enqueueReady(job);
      woke = true;
    }
    if (woke) this.pump();
  }

  private pump(): void {
    if (this.paused) return;
    const { maxConnections, maxConnectionsPerDestination } = this.limits;
    let progress = true;
    while (progress && this.inflight < maxConnections) {
      progress = false;
      for (const destination of [...this.readyDestinations]) {
        if (this.inflight >= maxConnections) break;
        const q = this.queues.get(destination);
        if (!q) continue;
        // At its cap the destination keeps its place; attempt() calls pump() when a slot frees.
        if (q.inflight >= maxConnectionsPerDestination) continue;
        const job = this.nextReady(q);
        if (!job) {
          this.readyDestinations.delete(destination);
          continue;
        }
        // Rotate so the next pass starts with another destination.
        this.readyDestinations.delete(destination);
        this.readyDestinations.add(destination);
        q.inflight++;
        this.inflight++;
        progress = true;
        void this.attempt(job, q);
      }
    }
  }

  private nextReady(q: DestinationQueue): Job | undefined {
    while (q.head < q.ready.length) {
      const job = q.ready[q.head++]!;
      if (q.head > 1024 && q.head * 2 > q.ready.length) {
        q.ready.splice(0, q.head);
        q.head = 0;
      }
      if (job.state === 'ready' && !job.message.deleted) return job;
    }
    return undefined;
  }

  private async attempt(job: Job, q: DestinationQueue): Promise<void> {
    job.state = 'inflight';
    const started = this.deps.now();
    try {
      const message = job.message;
      const body = await this.deps.spool.readBody(message.envelope.id);
      if (!body) {
        // Quarantined by the spool: drop it from the queue, never deliver part of it.
        this.messages.delete(message.envelope.id);
        message.deleted = true;
        return;
      }
      const recipients = job.recipientIndexes.map((i) => message.recipients[i]!.address);
      const report = await this.deps.deliver({
        from: message.envelope.from,
        recipients,
        body,
        domain: job.domain,
      });
      this.deps.observer.attempt(job.destination, this.deps.now() - started);
      if (!message.deleted) await this.apply(job, report);
    } catch (err) {
      this.deps.observer.error('delivery attempt failed', {
        queueId: job.message.envelope.id,
        err: String(err),
      });
      if (!job.message.deleted) this.deferJob(job, this.deps.now());
    } finally {
      q.inflight--;
      this.inflight--;
      if (q.ready.length > q.head) this.readyDestinations.add(job.destination);
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
      const state: RecipientState = { index, status: outcome, attempts: job.attempts };
      if (recipient.reply) state.reply = recipient.reply;
      if (outcome === 'deferred' && step.kind === 'retry') state.nextAttemptAt = step.at;
      changed.push(state);
      this.deps.observer.outcome({
        message,
        recipient,
        destination: job.destination,
        host: report.host,
        outcome,
        result,
        now,
      });
    }
    job.recipientIndexes = stillPending;
    if (stillPending.length === 0) message.jobs.delete(job.destination);
    // Awaited: the DSN quotes the original headers, which finish() is about to delete.
    if (failed.length > 0) await this.deps.observer.failed(message, failed);
    if (message.jobs.size === 0) {
      await this.finish(message);
      return;
    }
    // A final state must survive a crash (no second delivery); a deferral only loses its timer.
    const durable = changed.some((s) => s.status !== 'deferred');
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
