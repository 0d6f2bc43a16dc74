// A RateLimit's numbers as one relay enforces them. scope PerRelay: the numbers as written.
// scope Pool: the pool-wide numbers divided by the ready relays, rounded down so the whole pool
// never exceeds what the user asked for (and at least 1, so no relay is starved completely).
import type { RateLimitSpec } from '../api/types.ts';
import type { PoolRate, RatePer } from '../../../contract/config.ts';

export type Per = 'Second' | 'Minute' | 'Hour' | 'Day';

const SECONDS: Record<Per, number> = { Second: 1, Minute: 60, Hour: 3600, Day: 86400 };
const ORDER: Per[] = ['Second', 'Minute', 'Hour', 'Day'];
const SHORT: Record<Per, string> = { Second: 's', Minute: 'min', Hour: 'h', Day: 'd' };
const RELAY_PER: Record<Per, RatePer> = { Second: 'second', Minute: 'minute', Hour: 'hour', Day: 'day' };

export type Share = {
  /** Relays the numbers are divided by (1 for PerRelay). */
  sharedBy: number;
  /** The rate one relay enforces, in whole messages per the rendered period. */
  rate?: { messages: number; per: RatePer };
  burst?: number;
  maxConnections?: number;
  /** What status.effectiveRate shows, for example "6.67/s". */
  effectiveRate?: string;
};

/** Integer messages per period for `exact` messages per `per`, moving to a longer period
 * while rounding would lose more than 1% (20/s over 3 relays is 6.67/s: 400/min). */
export function integerRate(exact: number, per: Per): { messages: number; per: Per } {
  let index = ORDER.indexOf(per);
  let value = exact;
  while (index < ORDER.length - 1 && value < 100 && Math.floor(value) !== value) {
    const next = ORDER[index + 1] as Per;
    value = (value * SECONDS[next]) / SECONDS[ORDER[index] as Per];
    index++;
  }
  return { messages: Math.max(1, Math.floor(value)), per: ORDER[index] as Per };
}

function format(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(2).replace(/0+$/, '');
}

export function computeShare(spec: RateLimitSpec, readyRelays: number): Share {
  const sharedBy = spec.scope === 'Pool' ? Math.max(1, readyRelays) : 1;
  const share: Share = { sharedBy };
  if (spec.rate) {
    const exact = spec.rate.messages / sharedBy;
    const rendered = integerRate(exact, spec.rate.per);
    share.rate = { messages: rendered.messages, per: RELAY_PER[rendered.per] };
    share.effectiveRate = `${format(exact)}/${SHORT[spec.rate.per]}`;
    const perSecond = spec.rate.messages / SECONDS[spec.rate.per];
    const burst = spec.burst ?? Math.max(1, Math.ceil(perSecond));
    share.burst = Math.max(1, Math.floor(burst / sharedBy));
  }
  if (spec.maxConnections !== undefined) {
    share.maxConnections = Math.max(1, Math.floor(spec.maxConnections / sharedBy));
  }
  return share;
}

/**
 * The pool-wide numbers of a Pool-scoped limit (deferring, or rejecting at RCPT TO: its rate;
 * its connection cap: as leases), for relays that enforce them together in the pool's shared
 * store (RelayPool spec.sharedState); undefined when they cannot.
 */
export function poolNumbers(spec: RateLimitSpec): PoolRate | undefined {
  if (spec.scope !== 'Pool' || (!spec.rate && spec.maxConnections === undefined)) return undefined;
  const pool: PoolRate = {};
  if (spec.rate) {
    const perSecond = spec.rate.messages / SECONDS[spec.rate.per];
    pool.rate = { messages: spec.rate.messages, per: RELAY_PER[spec.rate.per] };
    pool.burst = spec.burst ?? Math.max(1, Math.ceil(perSecond));
  }
  if (spec.maxConnections !== undefined) pool.maxConnections = spec.maxConnections;
  return pool;
}
