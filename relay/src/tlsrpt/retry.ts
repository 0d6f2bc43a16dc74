// When a report whose POST failed (RFC 8460 §5.4: a collector that is down or answers non-2xx) is
// tried again: after 5 min, doubling up to 2 h apart, for at most a day after the first try, so a
// collector back within the day still gets the report and a dead one is not posted to for ever.
// Pure.

/** A report to POST again; `body` is the gzip JSON in base64 (it is kept in the state file). */
export interface PendingPost {
  url: string;
  domain: string;
  day: string;
  body: string;
  /** POSTs made so far (the first included). */
  attempts: number;
  firstAt: number;
  nextAt: number;
}

const FIRST_RETRY_MS = 5 * 60_000;
const MAX_RETRY_MS = 2 * 3600_000;
const GIVE_UP_AFTER_MS = 24 * 3600_000;

/** When to POST again after `attempts` failed POSTs, the last at `now`; undefined: give up. */
export function nextPostAt(p: { attempts: number; firstAt: number }, now: number): number | undefined {
  const delay = Math.min(FIRST_RETRY_MS * 2 ** Math.max(0, p.attempts - 1), MAX_RETRY_MS);
  const at = now + delay;
  return at - p.firstAt > GIVE_UP_AFTER_MS ? undefined : at;
}
