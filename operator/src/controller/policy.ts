// The one error policy of reconciles: which delay a failure earns, by error code and attempt.
import type { ErrorCode } from '../errors.ts';

const BASE_MS: Record<ErrorCode, number> = {
  API_CONFLICT: 100,
  API_NOT_FOUND: 500,
  API_FORBIDDEN: 30_000,
  API_INVALID: 30_000,
  API_THROTTLED: 2_000,
  API_UNAVAILABLE: 1_000,
  // Someone else's object under our name: it takes a person to move it.
  NOT_OWNED: 30_000,
  // The process is on its way out; the delay only matters if it is not.
  LEADERSHIP_LOST: 60_000,
  KEY_GENERATION: 5_000,
  INTERNAL: 5_000,
};
const MAX_MS = 5 * 60_000;

/** Exponential backoff from the code's base delay, capped at 5 minutes. */
export function requeueDelay(code: ErrorCode, attempt: number): number {
  return Math.min(MAX_MS, BASE_MS[code] * 2 ** Math.max(0, attempt - 1));
}
