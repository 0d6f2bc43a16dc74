// RateLimits with onExceed: reject, decided at RCPT TO. A Pool-scoped limit of a pool with a
// shared store is counted pool-wide in the store (the GCRA script of rate-limits.ts with no
// booking ahead: a recipient is admitted only if the pool has credit now); every other reject
// limit, and a pool-wide one while the store does not answer in time, is decided on this relay's
// bucket (its share), as without a store. The store never makes a limit "unlimited".
import type { Shaper } from '../shaping/shaper.ts';
import type { AppliedLimit } from '../shaping/plan.ts';
import type { MessageTraits } from '../shaping/match.ts';
import type { PoolLimiter } from './rate-limits.ts';

/**
 * Which of a recipient's reject limits the store decides (`pooled`) and which this relay's
 * buckets decide (`local`): a limit with pool-wide numbers goes to the store while it answers.
 * `fallback`: the pool-wide limits decided locally because the store is not answering. Pure.
 */
export function splitSubmission(
  applied: readonly AppliedLimit[],
  storeAvailable: boolean,
): { pooled: AppliedLimit[]; local: AppliedLimit[]; fallback: AppliedLimit[] } {
  const withPool = applied.filter((a) => a.limit.poolRate !== undefined);
  return storeAvailable
    ? { pooled: withPool, local: applied.filter((a) => a.limit.poolRate === undefined), fallback: [] }
    : { pooled: [], local: [...applied], fallback: withPool };
}

/** Ms within which a pool-wide decision at RCPT TO must come; slower, the share decides. */
const RCPT_DECISION_TIMEOUT_MS = 250;

/**
 * Takes credit for one recipient under every reject limit, or names a limit that refuses. The
 * relay's own buckets go first: a local refusal then costs the pool no credit (a pool refusal
 * after a local admission costs the local bucket one, which only errs on the strict side).
 */
export async function admitRecipient(
  shaper: Shaper,
  limiter: PoolLimiter | undefined,
  traits: MessageTraits,
  now: () => number,
): Promise<string | undefined> {
  const applied = shaper.submissionLimits(traits);
  if (applied.length === 0) return undefined;
  const split = splitSubmission(applied, limiter?.available === true);
  const local = shaper.admitSubmission(split.local, now());
  if (!local.ok) return local.limit;
  for (const a of split.fallback) limiter?.fellBack(a.limit.name);
  if (split.pooled.length === 0 || !limiter) return undefined;
  const requests = split.pooled.map((a) => ({
    limit: a.limit.name,
    destination: a.destination,
    rate: a.limit.poolRate!,
  }));
  try {
    const decision = await limiter.decide(requests, 0, RCPT_DECISION_TIMEOUT_MS);
    return decision.allowed ? undefined : split.pooled[0]!.limit.name;
  } catch {
    // The store failed or was too slow: this relay's share decides, and says so in the metric.
    const fallback = shaper.admitSubmission(split.pooled, now());
    if (!fallback.ok) return fallback.limit;
    for (const a of split.pooled) limiter.fellBack(a.limit.name);
    return undefined;
  }
}
