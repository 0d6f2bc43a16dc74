// The shaping plan: RateLimits from the config compiled into what the scheduler counts against
// (the relay's share applied), and which limit destinations one message falls into. Pure.
import type { AdaptiveBackoffConfig, RateLimitConfig } from '../config/types.ts';
import { durationMs } from '../config/duration.ts';
import { periodMs, scaleRate, type BucketRate } from './bucket.ts';
import { destinationKey, limitMatches, type LimitMatch, type MessageTraits } from './match.ts';
import type { AdaptiveBackoffPolicy } from './backoff.ts';

export interface CompiledLimit {
  name: string;
  match: LimitMatch;
  /** The rate this relay enforces (share applied); undefined: no rate, only connection caps. */
  rate: BucketRate | undefined;
  /** The pool-wide rate enforced in the shared store while it answers (`rate` is the fallback). */
  poolRate: BucketRate | undefined;
  /** Concurrent deliveries per limit destination (share applied, at least 1). */
  maxConnections: number | undefined;
  /** Connections per limit destination for the whole pool, leased in the shared store while it answers. */
  poolMaxConnections: number | undefined;
  maxMessagesPerConnection: number | undefined;
  onExceed: 'defer' | 'reject';
  /** How the limit's counters are split: per MX site, per recipient domain, or one total. */
  keyBy: 'mx' | 'domain' | 'total';
}

/** One limit applied to one message: `id` names the counters ("limit\0destination key"). */
export interface AppliedLimit {
  limit: CompiledLimit;
  id: string;
  /** The limit destination: an MX site ("mx:a,b"), a recipient domain, or "*" for a total. */
  destination: string;
}

/** The limits a delivery job falls under; jobs with the same `key` share one queue. */
export interface ShapingClass {
  key: string;
  limits: AppliedLimit[];
  /** Smallest maxConnections / maxMessagesPerConnection among the limits (for the SMTP pool). */
  maxConnections: number | undefined;
  maxMessagesPerConnection: number | undefined;
  /** Smallest pool-wide connection cap among the limits, when any has one (connections leased). */
  poolMaxConnections: number | undefined;
}

export const unshaped: ShapingClass = {
  key: '',
  limits: [],
  maxConnections: undefined,
  maxMessagesPerConnection: undefined,
  poolMaxConnections: undefined,
};

export function compileLimits(configs: readonly RateLimitConfig[]): CompiledLimit[] {
  return configs.map((c) => {
    const share = c.share ?? 1;
    const match: LimitMatch = {
      senderDomains: c.match.senderDomains,
      senderAddresses: c.match.senderAddresses,
      recipientDomains: c.match.recipientDomains,
      recipientMXHosts: c.match.recipientMXHosts ?? [],
    };
    const base = c.rate
      ? { messages: c.rate.messages, periodMs: periodMs[c.rate.per], burst: c.burst }
      : undefined;
    return {
      name: c.name,
      match,
      rate: base ? scaleRate(base, share) : undefined,
      poolRate:
        c.pool?.rate && base
          ? {
              messages: c.pool.rate.messages,
              periodMs: periodMs[c.pool.rate.per],
              burst: c.pool.burst ?? c.pool.rate.messages,
            }
          : undefined,
      // Rounded down so the pool's total is never exceeded (except when a share is below 1/n).
      maxConnections:
        c.maxConnections === undefined ? undefined : Math.max(1, Math.floor(c.maxConnections * share)),
      poolMaxConnections: c.maxConnections === undefined ? undefined : c.pool?.maxConnections,
      maxMessagesPerConnection: c.maxMessagesPerConnection,
      onExceed: c.onExceed,
      keyBy:
        match.recipientMXHosts.length > 0 ? 'mx' : match.recipientDomains.length > 0 ? 'domain' : 'total',
    };
  });
}

/** Whether any limit needs the recipient domain's MX hosts to decide. */
export function needsMxHosts(limits: readonly CompiledLimit[]): boolean {
  return limits.some((l) => l.match.recipientMXHosts.length > 0);
}

/**
 * Limits indexed by exact recipient domain, so a message is only matched against the limits that
 * can apply to it (100 limits of 50 domains each would otherwise be 5,000 comparisons a job).
 */
export interface LimitIndex {
  all: readonly CompiledLimit[];
  /** Limits listing this exact recipient domain (and no wildcard), in config order. */
  byRecipientDomain: Map<string, CompiledLimit[]>;
  /** Limits that must be checked for every message: wildcards, or no recipient domains. */
  scanned: CompiledLimit[];
}

export function indexLimits(limits: readonly CompiledLimit[]): LimitIndex {
  const index: LimitIndex = { all: limits, byRecipientDomain: new Map(), scanned: [] };
  for (const limit of limits) {
    const domains = limit.match.recipientDomains;
    if (domains.length === 0 || domains.some((d) => d.startsWith('*.'))) {
      index.scanned.push(limit);
      continue;
    }
    for (const d of new Set(domains.map((x) => x.toLowerCase()))) {
      const list = index.byRecipientDomain.get(d) ?? [];
      list.push(limit);
      index.byRecipientDomain.set(d, list);
    }
  }
  return index;
}

function candidates(index: LimitIndex, recipientDomain: string): readonly CompiledLimit[] {
  const exact = index.byRecipientDomain.get(recipientDomain.toLowerCase());
  if (!exact) return index.scanned;
  if (index.scanned.length === 0) return exact;
  const order = new Map(index.all.map((l, i) => [l, i]));
  return [...exact, ...index.scanned].sort((a, b) => order.get(a)! - order.get(b)!);
}

/** The limits that apply to a message to one destination, `onExceed` as asked. */
export function applicableLimits(
  index: LimitIndex,
  traits: MessageTraits,
  onExceed: 'defer' | 'reject',
): AppliedLimit[] {
  const applied: AppliedLimit[] = [];
  for (const limit of candidates(index, traits.recipientDomain)) {
    if (limit.onExceed !== onExceed || !limitMatches(limit.match, traits)) continue;
    const destination = limit.keyBy === 'total' ? '*' : destinationKey(limit.match, traits);
    applied.push({ limit, id: `${limit.name}\0${destination}`, destination });
  }
  return applied;
}

/**
 * The scheduling class of a job: the deferring limits, plus the connection caps of rejecting
 * limits (Reject only concerns the rate at submission).
 */
export function classify(index: LimitIndex, traits: MessageTraits): ShapingClass {
  const applied = applicableLimits(index, traits, 'defer');
  for (const a of applicableLimits(index, traits, 'reject')) {
    if (a.limit.maxConnections !== undefined || a.limit.maxMessagesPerConnection !== undefined) {
      applied.push({ ...a, limit: { ...a.limit, rate: undefined, poolRate: undefined } });
    }
  }
  if (applied.length === 0) return unshaped;
  return {
    key: applied.map((a) => a.id).join('\n'),
    limits: applied,
    maxConnections: smallest(applied.map((a) => a.limit.maxConnections)),
    maxMessagesPerConnection: smallest(applied.map((a) => a.limit.maxMessagesPerConnection)),
    poolMaxConnections: applied.some((a) => a.limit.poolMaxConnections !== undefined)
      ? smallest(applied.map((a) => connectionCap(a.limit, true)))
      : undefined,
  };
}

/**
 * The connections a limit allows per destination on this relay: the pool's number while the
 * shared store leases connections (the store holds the pool to it), otherwise the relay's share.
 */
export function connectionCap(limit: CompiledLimit, storeLeases: boolean): number | undefined {
  return storeLeases && limit.poolMaxConnections !== undefined
    ? limit.poolMaxConnections
    : limit.maxConnections;
}

/** The limits of a class whose connections are leased pool-wide in the shared store. */
export function leasedConnectionLimits(cls: ShapingClass): AppliedLimit[] {
  return cls.limits.filter((a) => a.limit.poolMaxConnections !== undefined);
}

function smallest(values: (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length > 0 ? Math.min(...defined) : undefined;
}

export function backoffPolicy(config: AdaptiveBackoffConfig): AdaptiveBackoffPolicy {
  return {
    decrease: config.decrease,
    increase: config.increase,
    minFactor: config.minFactor,
    successesPerStep: config.successesPerStep,
    holdMs: durationMs(config.hold),
    patterns: config.throttlePatterns.map((p) => new RegExp(p, 'i')),
  };
}

/** The limits of a class enforced pool-wide in the shared store while it answers. */
export function pooledLimits(cls: ShapingClass): AppliedLimit[] {
  return cls.limits.filter((a) => a.limit.poolRate !== undefined);
}
