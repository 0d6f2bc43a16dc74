// Pool-wide RateLimits in the shared store: one Lua script per decision runs the GCRA steps of
// shaping/gcra.ts atomically over every limit destination a message falls under, on the store's
// clock (the relays' clocks may disagree; the store's is one clock for all). A key per limit and
// destination holds its theoretical arrival time and expires once it would count as idle.
//
// The store not answering is never "unlimited": the limiter reports itself unavailable and the
// scheduler decides with the relay's own share of the limit (its local bucket) until it answers.
import type { Redis } from 'ioredis';
import { Counter, Histogram, type Registry } from 'prom-client';
import { gcraRate } from '../shaping/gcra.ts';
import type { BucketRate } from '../shaping/bucket.ts';

// KEYS[i]: the tat (epoch ms) of limit destination i. ARGV[1]: now in ms, or '' for the store's
// clock (tests pass a time to run a fixed table). ARGV[2]: the horizon (ms) within which a slot
// is booked ahead. ARGV[2i+1], ARGV[2i+2]: interval and tolerance of KEYS[i] in ms.
// Returns {1, ms until the booked slot} (every tat moved on) or {0, ms to wait} (nothing moved).
export const GCRA_SCRIPT = `
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[1])
end
local horizon = tonumber(ARGV[2])
local current = {}
local delay = 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i + 1])
  local tolerance = tonumber(ARGV[2 * i + 2])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or now - tat >= interval then tat = now end
  current[i] = tat
  if tat - tolerance - now > delay then delay = tat - tolerance - now end
end
if delay > horizon then return {0, math.ceil(delay - horizon)} end
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i + 1])
  local tat = current[i] + interval
  redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now + interval))
end
return {1, math.ceil(delay)}
`;

/** One limit destination a message falls under, with the pool-wide rate to hold it to. */
export interface PoolLimitRequest {
  limit: string;
  destination: string;
  rate: BucketRate;
}

/** Allowed: the message's slot comes in `delayMs` (booked ahead). Limited: ask again in `waitMs`. */
export type PoolDecision = { allowed: true; delayMs: number } | { allowed: false; waitMs: number };

/** What the scheduler needs from the pool's limiter (a test may pass another implementation). */
export interface PoolLimiter {
  /** Whether decisions go to the store now; false: decide with the relay's share. */
  readonly available: boolean;
  /** Rejects when the store does not answer (the caller decides locally meanwhile). */
  decide(limits: readonly PoolLimitRequest[]): Promise<PoolDecision>;
  /** A message admitted by the relay's share of a pool-wide limit while the store was down. */
  fellBack(limit: string): void;
}

interface GcraRedis extends Redis {
  mailfleetGcra(numKeys: number, ...args: (string | number)[]): Promise<[number, number]>;
}

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

  key(limit: string, destination: string): string {
    return `${this.keyPrefix}rate:${limit}:${destination}`;
  }

  async decide(limits: readonly PoolLimitRequest[]): Promise<PoolDecision> {
    const args: (string | number)[] = limits.map((l) => this.key(l.limit, l.destination));
    args.push('', HORIZON_MS);
    for (const l of limits) {
      const g = gcraRate(l.rate);
      args.push(g.intervalMs, g.toleranceMs);
    }
    const stop = this.latency.startTimer();
    let timer: NodeJS.Timeout | undefined;
    try {
      const [allowed, ms] = await Promise.race([
        this.redis.mailfleetGcra(limits.length, ...args),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('shared store decision timed out')), DECISION_TIMEOUT_MS);
        }),
      ]);
      stop();
      const decision = allowed === 1 ? 'allowed' : 'limited';
      for (const l of limits) this.decisions.inc({ rate_limit: l.limit, decision });
      return allowed === 1 ? { allowed: true, delayMs: ms } : { allowed: false, waitMs: ms };
    } catch (err) {
      this.failedUntil = this.now() + RETRY_AFTER_FAILURE_MS;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  fellBack(limit: string): void {
    this.decisions.inc({ rate_limit: limit, decision: 'fallback' });
  }
}
