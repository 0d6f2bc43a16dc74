// Retry timing: exponential backoff with jitter, capped, and never past the queue lifetime.
// Pure: the random source is a parameter.

export interface RetryPolicy {
  firstRetryMs: number;
  maxBackoffMs: number;
  maxQueueLifetimeMs: number;
  /** Age after which a NOTIFY=DELAY recipient still deferred gets its one "delayed" DSN; 0 or absent: never. */
  delayWarningAfterMs?: number;
}

/**
 * Delay before attempt number `attempts + 1`, after `attempts` failed attempts (>= 1).
 * Doubling from firstRetry up to maxBackoff; jitter of +-25% spreads retries of a burst of
 * messages that failed together, so a recovering destination is not hit by all at once.
 */
export function retryDelay(attempts: number, policy: RetryPolicy, random: () => number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  const base = Math.min(policy.firstRetryMs * 2 ** exponent, policy.maxBackoffMs);
  return Math.round(base * (0.75 + random() * 0.5));
}

export type NextStep = { kind: 'retry'; at: number } | { kind: 'expire' };

/** When to try again, or expire when the lifetime has run out. */
export function nextStep(
  input: { attempts: number; receivedAt: number; now: number },
  policy: RetryPolicy,
  random: () => number,
): NextStep {
  const expiresAt = input.receivedAt + policy.maxQueueLifetimeMs;
  if (input.now >= expiresAt) return { kind: 'expire' };
  // The last retry happens at the expiry instant so a message gets its full lifetime.
  return { kind: 'retry', at: Math.min(input.now + retryDelay(input.attempts, policy, random), expiresAt) };
}
