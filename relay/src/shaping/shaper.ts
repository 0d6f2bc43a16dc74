// The shaping state of one relay: a token bucket, a connection count and an adaptive backoff
// state per limit destination. Decisions are the pure functions of bucket.ts and backoff.ts; this
// class only keeps their state and answers the scheduler ("may this class go now?").
import type { AdaptiveBackoffConfig, RateLimitConfig } from '../config/types.ts';
import {
  convert,
  fullBucket,
  isIdle,
  readyAt,
  scaleRate,
  take,
  type Bucket,
  type BucketRate,
} from './bucket.ts';
import {
  isThrottle,
  mode,
  normal,
  onSuccess,
  onThrottle,
  type AdaptiveBackoffPolicy,
  type BackoffMode,
  type BackoffState,
} from './backoff.ts';
import {
  applicableLimits,
  backoffPolicy,
  classify,
  compileLimits,
  connectionCap,
  indexLimits,
  needsMxHosts,
  type AppliedLimit,
  type CompiledLimit,
  type LimitIndex,
  type ShapingClass,
} from './plan.ts';
import type { MessageTraits } from './match.ts';

export type Admission =
  | { admitted: true }
  | { admitted: false; reason: 'rate limit'; limit: string; until: number }
  | { admitted: false; reason: 'connection limit'; limit: string; id: string };

export interface BackoffTransition {
  limit: string;
  destination: string;
  from: BackoffMode;
  to: BackoffMode;
  /** The factor before the change, and after it. */
  fromFactor: number;
  factor: number;
  /** Learned from the pool's shared store rather than from this relay's own replies. */
  shared?: boolean;
}

/** One limit destination as shown in metrics and the API. */
export interface LimitDestinationState {
  limit: string;
  destination: string;
  /** Messages per second admitted now (share and backoff applied); undefined without a rate. */
  ratePerSecond: number | undefined;
  connections: number;
  backoff: BackoffMode;
  backoffFactor: number;
}

export interface Reply {
  code: number | undefined;
  text: string;
}

/** How often idle per-destination state is dropped. */
const PRUNE_INTERVAL_MS = 60_000;

export class Shaper {
  /** Limits in force (share applied), replaced on reload. */
  private limits: CompiledLimit[] = [];
  /** The same limits indexed by recipient domain for matching. */
  private index: LimitIndex = indexLimits([]);
  private policy: AdaptiveBackoffPolicy | undefined;
  /** Token bucket per limit destination id, created full on first use. */
  private readonly buckets = new Map<string, { bucket: Bucket; rate: BucketRate }>();
  /** Deliveries in flight per limit destination id. */
  private readonly connections = new Map<string, number>();
  /** Backoff per limit destination id; absent means normal. */
  private readonly backoff = new Map<string, BackoffState>();
  /** Limit and destination names per id, for reporting. */
  private readonly names = new Map<string, { limit: string; destination: string }>();
  /** When idle per-destination state was last dropped (see prune). */
  private lastPrune = 0;

  constructor(limits: readonly RateLimitConfig[], backoff: AdaptiveBackoffConfig) {
    this.configure(limits, backoff);
  }

  /** New limits or shares: buckets keep their debt, converted to the new rate. */
  configure(limits: readonly RateLimitConfig[], backoff: AdaptiveBackoffConfig): void {
    this.limits = compileLimits(limits);
    this.index = indexLimits(this.limits);
    this.policy = backoff.enabled ? backoffPolicy(backoff) : undefined;
    if (!this.policy) this.backoff.clear();
    const byName = new Map(this.limits.map((l) => [l.name, l]));
    for (const [id, entry] of this.buckets) {
      const limit = byName.get(id.slice(0, id.indexOf('\0')));
      if (!limit?.rate) {
        this.buckets.delete(id);
        continue;
      }
      const rate = this.effectiveRate(id, limit.rate);
      entry.bucket = convert(entry.bucket, entry.rate, rate);
      entry.rate = rate;
    }
  }

  get needsMxHosts(): boolean {
    return needsMxHosts(this.limits);
  }

  get limitCount(): number {
    return this.limits.length;
  }

  classify(traits: MessageTraits): ShapingClass {
    const cls = classify(this.index, traits);
    for (const a of cls.limits) this.names.set(a.id, { limit: a.limit.name, destination: a.destination });
    return cls;
  }

  /**
   * The first connection cap of the class that is full, if any. `storeLeases`: the shared store
   * leases connections now, so a pool-wide cap counts here as the pool's number (connectionCap).
   */
  connectionBlock(
    cls: ShapingClass,
    storeLeases = false,
  ): Extract<Admission, { reason: 'connection limit' }> | undefined {
    for (const a of cls.limits) {
      const max = connectionCap(a.limit, storeLeases);
      if (max !== undefined && (this.connections.get(a.id) ?? 0) >= max)
        return { admitted: false, reason: 'connection limit', limit: a.limit.name, id: a.id };
    }
    return undefined;
  }

  /**
   * Whether one more delivery of this class may start now; takes the rate credit if so. With
   * `pooledInStore` the pool-wide limits were admitted by the shared store and are skipped here;
   * with `storeLeases` pool-wide connection caps count as the pool's number (connectionBlock).
   */
  admit(cls: ShapingClass, now: number, pooledInStore = false, storeLeases = false): Admission {
    if (now - this.lastPrune >= PRUNE_INTERVAL_MS) this.prune(now);
    // A prune may have dropped the names of a class classified earlier: name it again.
    for (const a of cls.limits) this.names.set(a.id, { limit: a.limit.name, destination: a.destination });
    const full = this.connectionBlock(cls, storeLeases);
    if (full) return full;
    const local = (a: AppliedLimit) => a.limit.rate && !(pooledInStore && a.limit.poolRate);
    // All limits must admit: only take credit when every bucket has it, else wait for the latest.
    let until = now;
    let blocking: AppliedLimit | undefined;
    for (const a of cls.limits) {
      if (!local(a)) continue;
      const entry = this.bucketOf(a, now);
      const at = readyAt(entry.bucket, entry.rate, now);
      if (at > until) {
        until = at;
        blocking = a;
      }
    }
    if (blocking) return { admitted: false, reason: 'rate limit', limit: blocking.limit.name, until };
    for (const a of cls.limits) {
      if (!local(a)) continue;
      const entry = this.bucketOf(a, now);
      const result = take(entry.bucket, entry.rate, now);
      entry.bucket = result.bucket;
    }
    return { admitted: true };
  }

  /** The reject limits with a rate that apply to a message (decided at RCPT TO). */
  submissionLimits(traits: MessageTraits): AppliedLimit[] {
    return applicableLimits(this.index, traits, 'reject').filter((a) => a.limit.rate !== undefined);
  }

  /**
   * Reject limits at RCPT TO, on this relay's buckets (its share of a Pool-scoped limit): takes
   * credit from each, or names the first that refuses and takes none.
   */
  admitSubmission(
    applied: readonly AppliedLimit[],
    now: number,
  ): { ok: true } | { ok: false; limit: string; until: number } {
    for (const a of applied) {
      this.names.set(a.id, { limit: a.limit.name, destination: a.destination });
      const entry = this.bucketOf(a, now);
      const at = readyAt(entry.bucket, entry.rate, now);
      if (at > now) return { ok: false, limit: a.limit.name, until: at };
    }
    for (const a of applied) {
      const entry = this.bucketOf(a, now);
      entry.bucket = take(entry.bucket, entry.rate, now).bucket;
    }
    return { ok: true };
  }

  started(cls: ShapingClass): void {
    for (const a of cls.limits) this.connections.set(a.id, (this.connections.get(a.id) ?? 0) + 1);
  }

  finished(cls: ShapingClass): void {
    for (const a of cls.limits) {
      const n = (this.connections.get(a.id) ?? 1) - 1;
      if (n <= 0) this.connections.delete(a.id);
      else this.connections.set(a.id, n);
    }
  }

  /**
   * Feeds one attempt's replies to the backoff of the class's rate-limited destinations: a
   * throttling reply lowers the rate, a success counts towards recovery.
   */
  observe(cls: ShapingClass, replies: readonly Reply[], now: number): BackoffTransition[] {
    const policy = this.policy;
    if (!policy) return [];
    const throttled = replies.some((r) => {
      const code = r.code ?? Number(/^(\d{3})/.exec(r.text)?.[1] ?? 0);
      const enhanced = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})/.exec(r.text)?.[1];
      return isThrottle(code, enhanced, r.text, policy);
    });
    const succeeded = !throttled && replies.some((r) => (r.code ?? Number(r.text.slice(0, 3))) < 300);
    if (!throttled && !succeeded) return [];
    const transitions: BackoffTransition[] = [];
    for (const a of cls.limits) {
      if (!a.limit.rate) continue;
      const before = this.backoff.get(a.id) ?? normal;
      const after = throttled ? onThrottle(before, now, policy) : onSuccess(before, now, policy);
      if (after === before) continue;
      if (after.factor >= 1) this.backoff.delete(a.id);
      else this.backoff.set(a.id, after);
      if (after.factor !== before.factor) {
        const entry = this.bucketOf(a, now);
        const rate = this.effectiveRate(a.id, a.limit.rate);
        entry.bucket = convert(entry.bucket, entry.rate, rate);
        entry.rate = rate;
        transitions.push({
          limit: a.limit.name,
          destination: a.destination,
          from: mode(before),
          to: mode(after),
          fromFactor: before.factor,
          factor: after.factor,
        });
      }
    }
    return transitions;
  }

  /**
   * The pool's backoff factor of a pool-wide limit destination, as the shared store answered a
   * decision: the relay adopts it (for its share while the store is down, metrics and the API),
   * counting its recovery successes afresh when it changed.
   */
  adoptPoolBackoff(a: AppliedLimit, factor: number, now: number): BackoffTransition | undefined {
    const before = this.backoff.get(a.id) ?? normal;
    if (!this.policy || !a.limit.rate || before.factor === factor) return undefined;
    const after = { factor, successes: 0, changedAt: now };
    if (factor >= 1) this.backoff.delete(a.id);
    else this.backoff.set(a.id, after);
    const entry = this.buckets.get(a.id);
    if (entry) {
      const rate = this.effectiveRate(a.id, a.limit.rate);
      entry.bucket = convert(entry.bucket, entry.rate, rate);
      entry.rate = rate;
    }
    this.names.set(a.id, { limit: a.limit.name, destination: a.destination });
    return {
      limit: a.limit.name,
      destination: a.destination,
      from: mode(before),
      to: mode(after),
      fromFactor: before.factor,
      factor,
      shared: true,
    };
  }

  /** Every limit destination seen, for metrics and the API. */
  states(): LimitDestinationState[] {
    const ids = new Set([...this.buckets.keys(), ...this.connections.keys(), ...this.backoff.keys()]);
    const out: LimitDestinationState[] = [];
    for (const id of ids) {
      const name = this.names.get(id);
      if (!name) continue;
      const entry = this.buckets.get(id);
      const b = this.backoff.get(id) ?? normal;
      out.push({
        limit: name.limit,
        destination: name.destination,
        ratePerSecond: entry ? (entry.rate.messages * 1000) / entry.rate.periodMs : undefined,
        connections: this.connections.get(id) ?? 0,
        backoff: mode(b),
        backoffFactor: b.factor,
      });
    }
    return out;
  }

  backoffOf(id: string): BackoffState {
    return this.backoff.get(id) ?? normal;
  }

  /**
   * Drops the state of limit destinations that are back to normal: a bucket without debt is the
   * same as a new one, and no connection or backoff is held. Without this, every destination
   * ever seen would keep a bucket and the maps would grow without bound.
   */
  prune(now: number): void {
    this.lastPrune = now;
    for (const [id, entry] of this.buckets) {
      if (isIdle(entry.bucket, entry.rate, now)) this.buckets.delete(id);
    }
    for (const id of this.names.keys()) {
      if (!this.buckets.has(id) && !this.connections.has(id) && !this.backoff.has(id)) this.names.delete(id);
    }
  }

  /** Limit destinations with state held (buckets in debt, connections, backoff). */
  get trackedDestinations(): number {
    return this.names.size;
  }

  private effectiveRate(id: string, base: BucketRate): BucketRate {
    return scaleRate(base, this.backoff.get(id)?.factor ?? 1);
  }

  private bucketOf(a: AppliedLimit, now: number): { bucket: Bucket; rate: BucketRate } {
    let entry = this.buckets.get(a.id);
    if (!entry) {
      const rate = this.effectiveRate(a.id, a.limit.rate!);
      entry = { bucket: fullBucket(rate, now), rate };
      this.buckets.set(a.id, entry);
    }
    return entry;
  }
}
