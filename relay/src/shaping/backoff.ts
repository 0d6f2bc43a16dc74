// Adaptive backoff per destination, after PowerMTA's backoff mode: when a destination answers with
// throttling signs, the relay halves the rate it sends there; after a run of successes it recovers
// one step at a time until it is back at the configured rate. Pure: callers keep the state.

export interface AdaptiveBackoffPolicy {
  /** Multiplier applied to the rate on each throttling reply (0.5 halves it). */
  decrease: number;
  /** Multiplier applied on each recovery step (1.5 grows it by half). */
  increase: number;
  /** Lowest factor the rate may fall to. */
  minFactor: number;
  /** Successful deliveries needed before a recovery step. */
  successesPerStep: number;
  /** Minimum time between two changes, so one burst of 421s counts once. */
  holdMs: number;
  /** Reply texts that mean "slow down" even without a 421 or 4.7.x code. */
  patterns: RegExp[];
}

/** One destination's backoff: `factor` scales its rates; 1 means normal mode. */
export interface BackoffState {
  factor: number;
  successes: number;
  changedAt: number;
}

export const normal: BackoffState = { factor: 1, successes: 0, changedAt: -Infinity };

export type BackoffMode = 'normal' | 'backoff';

export function mode(state: BackoffState): BackoffMode {
  return state.factor < 1 ? 'backoff' : 'normal';
}

/** Whether a reply is a throttling sign: 421, any 4.7.x, or a configured text on a 4xx. */
export function isThrottle(
  code: number,
  enhanced: string | undefined,
  text: string,
  policy: AdaptiveBackoffPolicy,
): boolean {
  if (code === 421) return true;
  if (code >= 400 && code < 500) {
    if (enhanced && /^4\.7\.\d+$/.test(enhanced)) return true;
    return policy.patterns.some((p) => p.test(text));
  }
  return false;
}

export function onThrottle(state: BackoffState, now: number, policy: AdaptiveBackoffPolicy): BackoffState {
  if (now - state.changedAt < policy.holdMs && state.factor < 1) return { ...state, successes: 0 };
  return { factor: Math.max(policy.minFactor, state.factor * policy.decrease), successes: 0, changedAt: now };
}

export function onSuccess(state: BackoffState, now: number, policy: AdaptiveBackoffPolicy): BackoffState {
  if (state.factor >= 1) return state;
  const successes = state.successes + 1;
  if (successes < policy.successesPerStep || now - state.changedAt < policy.holdMs)
    return { ...state, successes };
  const factor = Math.min(1, state.factor * policy.increase);
  return { factor, successes: 0, changedAt: now };
}
