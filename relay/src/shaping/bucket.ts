// A token bucket in the GCRA form (the "virtual scheduling" of ITU-T I.371): the state is the
// theoretical arrival time of the next message. Time is counted in units of 1/messages ms, so a
// rate of `messages` per `periodMs` is an emission interval of exactly `periodMs` units and the
// bucket never drifts, whatever the rate (7/s admits exactly 700 messages in 100 s).
// The origin is rebased on every call so the numbers stay far below 2^53.

export interface BucketRate {
  messages: number;
  periodMs: number;
  burst: number;
}

/** A bucket: `tat` is the theoretical arrival time, in 1/messages ms after `origin` (epoch ms). */
export interface Bucket {
  origin: number;
  tat: number;
}

export type Take = { admitted: true; bucket: Bucket } | { admitted: false; bucket: Bucket; readyAt: number };

export const periodMs = { second: 1_000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/** A new bucket starts full, so a burst may go at once. */
export function fullBucket(_rate: BucketRate, now: number): Bucket {
  return { origin: now, tat: 0 };
}

function rebase(bucket: Bucket, rate: BucketRate, now: number): Bucket {
  const elapsed = (now - bucket.origin) * rate.messages;
  // A caller that wakes after readyAt (timer granularity, a busy event loop) keeps its lateness,
  // up to one message interval, as a negative tat and catches up, so the long-run rate is the
  // configured one even on a loaded machine. That adds at most one message to a burst. Longer
  // idleness simply refills the bucket.
  if (elapsed - bucket.tat >= rate.periodMs) return { origin: now, tat: 0 };
  return { origin: now, tat: bucket.tat - elapsed };
}

/** Takes one message's worth of credit, or says when there will be enough. */
export function take(bucket: Bucket, rate: BucketRate, now: number): Take {
  const current = rebase(bucket, rate, now);
  const tolerance = (rate.burst - 1) * rate.periodMs;
  if (current.tat - tolerance <= 0)
    return { admitted: true, bucket: { origin: now, tat: current.tat + rate.periodMs } };
  return {
    admitted: false,
    bucket: current,
    readyAt: now + Math.ceil((current.tat - tolerance) / rate.messages),
  };
}

/** Whether the bucket holds no debt at `now`, i.e. behaves exactly like a new full bucket. */
export function isIdle(bucket: Bucket, rate: BucketRate, now: number): boolean {
  return rebase(bucket, rate, now).tat <= 0;
}

/** When a message could be taken, without taking it. */
export function readyAt(bucket: Bucket, rate: BucketRate, now: number): number {
  const current = rebase(bucket, rate, now);
  const tolerance = (rate.burst - 1) * rate.periodMs;
  return current.tat - tolerance <= 0 ? now : now + Math.ceil((current.tat - tolerance) / rate.messages);
}

/** Carries a bucket's debt over to a new rate (a new share, or a backoff step). */
export function convert(bucket: Bucket, from: BucketRate, to: BucketRate): Bucket {
  const debtMs = bucket.tat / from.messages;
  return { origin: bucket.origin, tat: Math.round(debtMs * to.messages * (to.periodMs / from.periodMs)) };
}

/**
 * Scales a rate by a factor (a relay's share of a Pool limit, or adaptive backoff), keeping it
 * integral: the period is stretched instead of the message count shrunk below one.
 */
export function scaleRate(rate: BucketRate, factor: number): BucketRate {
  if (factor >= 1) return rate;
  const scaledMessages = rate.messages * factor;
  if (scaledMessages >= 1 && Number.isInteger(scaledMessages)) {
    return { ...rate, messages: scaledMessages, burst: Math.max(1, Math.floor(rate.burst * factor)) };
  }
  // e.g. 10/s × 1/3 → 10 per 3000 ms; 1/s × 0.5 → 1 per 2000 ms.
  return {
    messages: rate.messages,
    periodMs: Math.ceil(rate.periodMs / factor),
    burst: Math.max(1, Math.floor(rate.burst * factor)),
  };
}
