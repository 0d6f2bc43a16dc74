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

export function gcraRate(rate: BucketRate): GcraRate {
  const intervalMs = rate.periodMs / rate.messages;
  return { intervalMs, toleranceMs: (rate.burst - 1) * intervalMs };
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
