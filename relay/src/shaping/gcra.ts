// Pool-wide rate limits: the generic cell rate algorithm (GCRA, the "virtual scheduling" of
// ITU-T I.371) over absolute times, as the shared store runs it (shared-state/rate-limits.ts runs
// the same steps in one Lua script, so every decision is atomic across the relays of a pool).
// The state of one limit destination is its theoretical arrival time (`tat`, epoch ms): the
// instant the next message is due if messages went exactly at the rate. Pure.
import type { BucketRate } from './bucket.ts';

/** A rate in GCRA terms: one message per `intervalMs`, up to `toleranceMs` early (the burst). */
export interface GcraRate {
  intervalMs: number;
  toleranceMs: number;
}

export type GcraDecision =
  | { allowed: true; delayMs: number; tats: number[] }
  | { allowed: false; waitMs: number; tats: (number | undefined)[] };

/**
 * A rate in GCRA terms, slowed by an adaptive backoff factor (1: none) as the per-relay bucket
 * scales it (bucket.ts scaleRate): the interval stretched, the burst scaled down to at least 1.
 */
export function gcraRate(rate: BucketRate, factor = 1): GcraRate {
  const f = Math.min(1, factor);
  const intervalMs = rate.periodMs / rate.messages / f;
  return { intervalMs, toleranceMs: (Math.max(1, Math.floor(rate.burst * f)) - 1) * intervalMs };
}

/**
 * What the store keeps as a limit destination's shared backoff factor when a relay reports a
 * change from `seen` (the factor it acted on) to `next`: a slow-down always lands unless the store
 * already holds a lower factor (another relay backed off further); a recovery step lands only if
 * nobody changed the factor since this relay saw it, so a recovery never undoes a newer slow-down.
 * `undefined`: no backoff (the key is deleted).
 */
export function sharedBackoffAfter(
  stored: number | undefined,
  seen: number,
  next: number,
): number | undefined {
  const current = stored ?? 1;
  const slower = next < seen;
  const keep = slower ? next >= current : current !== seen;
  const factor = keep ? current : next;
  return factor >= 1 ? undefined : factor;
}

/**
 * One decision over every limit a message falls under: allowed only when all admit, and then
 * each limit's `tat` moves one interval on; otherwise nothing changes and `waitMs` says when
 * asking again can succeed. Within `horizonMs` the slot is booked ahead: allowed, to start in
 * `delayMs`. A relay then keeps its place in the schedule however late its timer fires, so
 * timer lag on a busy node delays a message but does not lose the pool its rate.
 * A `tat` behind `now` by less than one interval is kept, so a relay that asks a little late
 * catches up and the long-run rate is the configured one, as the per-relay bucket does
 * (bucket.ts); older state counts as idle (a full burst).
 */
export function gcraDecide(
  tats: readonly (number | undefined)[],
  rates: readonly GcraRate[],
  now: number,
  horizonMs = 0,
): GcraDecision {
  const current = rates.map((rate, i) => {
    const tat = tats[i];
    return tat === undefined || now - tat >= rate.intervalMs ? now : tat;
  });
  let delayMs = 0;
  rates.forEach((rate, i) => (delayMs = Math.max(delayMs, current[i]! - rate.toleranceMs - now)));
  if (delayMs > horizonMs) return { allowed: false, waitMs: Math.ceil(delayMs - horizonMs), tats: [...tats] };
  return {
    allowed: true,
    delayMs: Math.ceil(delayMs),
    tats: rates.map((rate, i) => current[i]! + rate.intervalMs),
  };
}
