// What a report does with the answer to its `_smtp._tls.<domain>` TXT lookup. "No such name" or
// "no TXT data" is the domain's answer: it takes no reports, and its counts go. Any other failure
// (SERVFAIL, REFUSED, a timeout, the resolver unreachable) says nothing about the domain: the
// counts are kept and the lookup tried again on the schedule of a failed POST (retry.ts), given
// up only when a POST would be. Pure.
import { parseTlsRptRecord, type TlsRptRecord } from './record.ts';
import { nextPostAt } from './retry.ts';

/** The lookup's result: the TXT records, or the error code Node's resolver gave. */
export type RecordLookup = { txt: readonly (readonly string[])[] } | { error: string };

export type RecordDecision =
  | { action: 'send'; record: TlsRptRecord }
  /** No `v=TLSRPTv1` record (or not exactly one, or no usable rua): the domain takes no reports. */
  | { action: 'drop'; reason: 'no-record' }
  | { action: 'retry'; error: string; at: number }
  | { action: 'give-up'; error: string };

/** Errors that are the domain's own answer (NXDOMAIN, NOERROR with no TXT). */
const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * `tried`: the lookups made so far for this report (this one included) and when the first was;
 * `now`: when this one failed.
 */
export function recordDecision(
  lookup: RecordLookup,
  tried: { attempts: number; firstAt: number },
  now: number,
): RecordDecision {
  if ('txt' in lookup) {
    const record = parseTlsRptRecord(lookup.txt);
    return record ? { action: 'send', record } : { action: 'drop', reason: 'no-record' };
  }
  if (NO_RECORD.has(lookup.error)) return { action: 'drop', reason: 'no-record' };
  const at = nextPostAt(tried, now);
  return at === undefined
    ? { action: 'give-up', error: lookup.error }
    : { action: 'retry', error: lookup.error, at };
}

/** A report whose record lookup failed: the domain's counts for the period, kept for a retry. */
export interface PendingLookup {
  domain: string;
  day: string;
  start: number;
  end: number;
  /** Attempt keys (tally.ts) and their counts. */
  counts: [string, number][];
  /** Lookups made so far. */
  attempts: number;
  firstAt: number;
  nextAt: number;
}
