// Pool-wide RateLimits in the shared store: one Lua script per decision runs the GCRA steps of
// shaping/gcra.ts atomically over every limit destination a message falls under, on the store's
// clock (the relays' clocks may disagree; the store's is one clock for all). A key per limit and
// destination holds its theoretical arrival time and expires once it would count as idle.
//
// Adaptive backoff is shared the same way: a relay that learns a destination is throttling
// publishes its new factor (with an expiry), and every decision of every relay applies the pool's
// factor in the script and hands it back, so the pool backs off together.
//
// The store not answering is never "unlimited": the limiter reports itself unavailable and the
// scheduler decides with the relay's own share of the limit (its local bucket) until it answers.
import type { Redis } from 'ioredis';
import { Counter, Histogram, type Registry } from 'prom-client';
import { gcraRate } from '../shaping/gcra.ts';
import { answerWithin } from './answer-within.ts';
import type { BucketRate } from '../shaping/bucket.ts';

// For limit destination i: KEYS[2i-1] holds its tat (epoch ms), KEYS[2i] its shared backoff
// factor (absent: 1). ARGV[1]: now in ms, or '' for the store's clock (tests pass a time to run a
// fixed table). ARGV[2]: the horizon (ms) within which a slot is booked ahead. ARGV[2i+1],
// ARGV[2i+2]: the limit's interval (ms) and burst before backoff, slowed here as gcraRate does.
// Returns {1, ms until the booked slot, factors...} (every tat moved on) or {0, ms to wait,
// factors...} (nothing moved); the factors (strings) let the relay adopt the pool's backoff.
export const GCRA_SCRIPT = `
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[1])
end
local horizon = tonumber(ARGV[2])
local n = #KEYS / 2
local current, intervals, factors = {}, {}, {}
local delay = 0
for i = 1, n do
  local f = math.min(1, tonumber(redis.call('GET', KEYS[2 * i])) or 1)
  local interval = tonumber(ARGV[2 * i + 1]) / f
  local tolerance = (math.max(1, math.floor(tonumber(ARGV[2 * i + 2]) * f)) - 1) * interval
  local tat = tonumber(redis.call('GET', KEYS[2 * i - 1]))
  if tat == nil or now - tat >= interval then tat = now end
  current[i], intervals[i], factors[i] = tat, interval, tostring(f)
  if tat - tolerance - now > delay then delay = tat - tolerance - now end
end
local allowed = 1
if delay > horizon then
  allowed, delay = 0, delay - horizon
else
  for i = 1, n do
    local tat = current[i] + intervals[i]
    redis.call('SET', KEYS[2 * i - 1], string.format('%.3f', tat), 'PX', math.ceil(tat - now + intervals[i]))
  end
end
return {allowed, math.ceil(delay), unpack(factors)}
`;

// KEYS[1]: a limit destination's shared backoff factor. ARGV: the factor the relay acted on, the
// factor it moved to, the expiry (ms). The rule of sharedBackoffAfter (shaping/gcra.ts).
export const BACKOFF_SCRIPT = `
local current = tonumber(redis.call('GET', KEYS[1])) or 1
local seen, next = tonumber(ARGV[1]), tonumber(ARGV[2])
local keep
if next < seen then keep = next >= current else keep = current ~= seen end
local factor = next
if keep then factor = current end
if factor >= 1 then redis.call('DEL', KEYS[1]) return '1' end
redis.call('SET', KEYS[1], tostring(factor), 'PX', ARGV[3])
return tostring(factor)
`;

/** One limit destination a message falls under, with the pool-wide rate to hold it to. */
export interface PoolLimitRequest {
  limit: string;
  destination: string;
  rate: BucketRate;
}

/**
 * Allowed: the message's slot comes in `delayMs` (booked ahead). Limited: ask again in `waitMs`.
 * `factors`: the pool's backoff factor of each limit destination asked about, in order.
 */
export type PoolDecision = ({ allowed: true; delayMs: number } | { allowed: false; waitMs: number }) & {
  factors: number[];
};

/** What the scheduler needs from the pool's limiter (a test may pass another implementation). */
export interface PoolLimiter {
  /** Whether decisions go to the store now; false: decide with the relay's share. */
  readonly available: boolean;
  /**
   * Rejects when the store does not answer (the caller decides locally meanwhile). `horizonMs`:
   * how far ahead a slot may be booked (0: only a message that may go now is counted);
   * `timeoutMs`: how long the store may take before it counts as not answering.
   */
  decide(limits: readonly PoolLimitRequest[], horizonMs?: number, timeoutMs?: number): Promise<PoolDecision>;
  /** A message admitted by the relay's share of a pool-wide limit while the store was down. */
  fellBack(limit: string): void;
  /** This relay's backoff of a pool-wide limit destination moved from `seen` to `next`. */
  publishBackoff(limit: string, destination: string, seen: number, next: number): Promise<void>;
}

interface GcraRedis extends Redis {
  mailfleetGcra(numKeys: number, ...args: (string | number)[]): Promise<[number, number, ...string[]]>;
  mailfleetBackoff(numKeys: number, ...args: (string | number)[]): Promise<string>;
}

/**
 * How long a shared backoff lasts without a new change: a destination the pool stopped sending to
 * is back to normal after this, as the pool has no successes left to recover with.
 */
const BACKOFF_TTL_MS = 15 * 60_000;

/**
 * How far ahead a slot may be booked. A relay keeps its place in the pool's schedule however late
 * its timer fires (a busy node), instead of the pool losing the slot; each queue books at most
 * one message at a time, so the pool never books more than one slot per relay queue ahead.
 */
const HORIZON_MS = 1000;
/** A store slower than this counts as down for the decision: the relay's share decides. */
const DECISION_TIMEOUT_MS = 500;
/** After a failed decision, the share decides for this long before the store is asked again. */
const RETRY_AFTER_FAILURE_MS = 1000;

export interface SharedRateLimitsOptions {
  redis: Redis;
  keyPrefix: string;
  /** Whether the store's connection is ready. */
  connected: () => boolean;
  registry: Registry;
  now?: () => number;
}

export class SharedRateLimits implements PoolLimiter {
  private readonly redis: GcraRedis;
  private readonly keyPrefix: string;
  private readonly connected: () => boolean;
  private readonly now: () => number;
  /** Until when a failed decision keeps the limiter on local shares. */
  private failedUntil = 0;
  private readonly decisions: Counter<'rate_limit' | 'decision'>;
  private readonly latency: Histogram;

  constructor(o: SharedRateLimitsOptions) {
    this.redis = o.redis as GcraRedis;
    this.redis.defineCommand('mailfleetGcra', { lua: GCRA_SCRIPT });
    this.redis.defineCommand('mailfleetBackoff', { lua: BACKOFF_SCRIPT });
    this.keyPrefix = o.keyPrefix;
    this.connected = o.connected;
    this.now = o.now ?? Date.now;
    const registers = [o.registry];
    this.decisions = new Counter({
      name: 'mailfleet_relay_shared_rate_limit_decisions_total',
      help: 'Decisions on pool-wide RateLimits by decision: allowed or limited by the shared store, or fallback (admitted by this relay’s share because the store did not answer).',
      labelNames: ['rate_limit', 'decision'],
      registers,
    });
    this.latency = new Histogram({
      name: 'mailfleet_relay_shared_rate_limit_decision_seconds',
      help: 'Time for one pool-wide RateLimit decision in the shared store (round trip and script).',
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.5],
      registers,
    });
  }

  get available(): boolean {
    return this.connected() && this.now() >= this.failedUntil;
  }

  key(kind: 'rate' | 'backoff', limit: string, destination: string): string {
    return `${this.keyPrefix}${kind}:${limit}:${destination}`;
  }

  async decide(
    limits: readonly PoolLimitRequest[],
    horizonMs = HORIZON_MS,
    timeoutMs = DECISION_TIMEOUT_MS,
  ): Promise<PoolDecision> {
    const args: (string | number)[] = limits.flatMap((l) => [
      this.key('rate', l.limit, l.destination),
      this.key('backoff', l.limit, l.destination),
    ]);
    args.push('', horizonMs);
    for (const l of limits) args.push(gcraRate(l.rate).intervalMs, l.rate.burst);
    const stop = this.latency.startTimer();
    const reply = this.redis.mailfleetGcra(2 * limits.length, ...args).then(
      (answer) => ({ answer }),
      (err: unknown) => ({ err }),
    );
    const settled = await answerWithin(reply, timeoutMs);
    if (settled === 'late' || 'err' in settled) {
      this.failedUntil = this.now() + RETRY_AFTER_FAILURE_MS;
      throw settled === 'late' ? new Error('shared store decision timed out') : settled.err;
    }
    stop();
    const [allowed, ms, ...factors] = settled.answer;
    const decision = allowed === 1 ? 'allowed' : 'limited';
    for (const l of limits) this.decisions.inc({ rate_limit: l.limit, decision });
    const shared = factors.map(Number);
    return allowed === 1
      ? { allowed: true, delayMs: ms, factors: shared }
      : { allowed: false, waitMs: ms, factors: shared };
  }

  async publishBackoff(limit: string, destination: string, seen: number, next: number): Promise<void> {
    if (!this.available) return;
    try {
      await this.redis.mailfleetBackoff(
        1,
        this.key('backoff', limit, destination),
        seen,
        next,
        BACKOFF_TTL_MS,
      );
    } catch {
      // The store will be asked again by the next change; decisions meanwhile use local state.
      this.failedUntil = this.now() + RETRY_AFTER_FAILURE_MS;
    }
  }

  fellBack(limit: string): void {
    this.decisions.inc({ rate_limit: limit, decision: 'fallback' });
  }
}
