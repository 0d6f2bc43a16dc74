// AUTH failure throttling in the manner of Postfix's anvil: each failed attempt, counted per client
// IP and per username, makes the next reply wait longer, and too many failures within a window lock
// the key out for a while. Pure: the caller keeps the counters and passes the clock.

export interface AnvilPolicy {
  /** Failures within `windowMs` that lock the key out. */
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
  /** Delay after the first failure; doubles with each further failure up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** One key's recent failures. */
export interface FailureCounter {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

export type AnvilVerdict = { locked: true; retryAfterMs: number } | { locked: false; delayMs: number };

function live(
  counter: FailureCounter | undefined,
  now: number,
  policy: AnvilPolicy,
): FailureCounter | undefined {
  if (!counter) return undefined;
  if (counter.lockedUntil > now) return counter;
  if (now - counter.windowStart > policy.windowMs) return undefined;
  return counter;
}

/** What to do with an AUTH attempt from a key, before checking the password. */
export function verdict(counter: FailureCounter | undefined, now: number, policy: AnvilPolicy): AnvilVerdict {
  const current = live(counter, now, policy);
  if (!current) return { locked: false, delayMs: 0 };
  if (current.lockedUntil > now) return { locked: true, retryAfterMs: current.lockedUntil - now };
  if (current.failures === 0) return { locked: false, delayMs: 0 };
  const delayMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (current.failures - 1));
  return { locked: false, delayMs };
}

/** The counter after one more failed attempt; locks the key when the window fills. */
export function afterFailure(
  counter: FailureCounter | undefined,
  now: number,
  policy: AnvilPolicy,
): FailureCounter {
  const current = live(counter, now, policy);
  if (current && current.lockedUntil > now) return current;
  const failures = (current?.failures ?? 0) + 1;
  const windowStart = current?.windowStart ?? now;
  const lockedUntil = failures >= policy.maxFailures ? now + policy.lockoutMs : 0;
  // A lockout starts a fresh window once it ends, so the next failure does not relock at once.
  return lockedUntil
    ? { failures: 0, windowStart: now + policy.lockoutMs, lockedUntil }
    : { failures, windowStart, lockedUntil };
}

/** The strictest verdict over several keys (client IP and username). */
export function combine(verdicts: AnvilVerdict[]): AnvilVerdict {
  const locked = verdicts.filter((v): v is { locked: true; retryAfterMs: number } => v.locked);
  if (locked.length > 0)
    return { locked: true, retryAfterMs: Math.max(...locked.map((v) => v.retryAfterMs)) };
  return { locked: false, delayMs: Math.max(0, ...verdicts.map((v) => (v.locked ? 0 : v.delayMs))) };
}

/** Drops counters that no longer matter, so the map stays bounded by recent attackers. */
export function prune(counters: Map<string, FailureCounter>, now: number, policy: AnvilPolicy): void {
  for (const [key, counter] of counters) if (!live(counter, now, policy)) counters.delete(key);
}
