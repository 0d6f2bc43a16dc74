// The day's TLS results (RFC 8460 §4): each TLS session counted once per UTC day under what it
// was (domain, policy, result, MX host, our address), and the pure aggregation of such counts into the
// report's policies per domain. The same counts are kept in the pool's shared store when there is
// one (shared-state/tls-reports.ts); this is a relay's own copy.
import type { AppliedTlsPolicy, TlsFailure } from '../delivery/tls-policy.ts';

/** One session of a direct delivery and what its TLS policy made of it. */
export interface TlsAttempt {
  /** The recipient (policy) domain. */
  domain: string;
  policy: AppliedTlsPolicy;
  result: 'success' | TlsFailure;
  /** The MX host name and the address connected to ('' when no host was tried). */
  mx: string;
  address: string;
  /** The local address the session left from (RFC 8460 §4.3 sending-mta-ip; '' without one). */
  sendingIp: string;
  /** The policy as RFC 8460 §4.4 `policy-string` (STS policy lines, TLSA records). */
  policyString: string[];
  /** `mx-host`: the STS policy's MX patterns, or the DANE host. */
  mxHost: string[];
}

/** RFC 8460 §4.4 policy-type. */
export type PolicyType = 'sts' | 'tlsa' | 'no-policy-found';

function policyType(policy: AppliedTlsPolicy): PolicyType {
  if (policy === 'dane') return 'tlsa';
  if (policy === 'mta-sts' || policy === 'mta-sts-testing') return 'sts';
  return 'no-policy-found';
}

export interface FailureCount {
  resultType: TlsFailure;
  mx: string;
  address: string;
  sendingIp: string;
  count: number;
}

export interface PolicyTally {
  type: PolicyType;
  policyString: string[];
  mxHost: string[];
  successes: number;
  failures: FailureCount[];
}

/** Counts of identical attempts. */
export type AttemptCounts = Iterable<readonly [TlsAttempt, number]>;

/** UTC day of a time, `YYYY-MM-DD`. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The same key for the same attempt, in any relay (field order fixed). */
export function attemptKey(a: TlsAttempt): string {
  return JSON.stringify([
    a.domain.toLowerCase(),
    a.policy,
    a.result,
    a.mx,
    a.address,
    a.policyString,
    a.mxHost,
    a.sendingIp,
  ]);
}

export function attemptOfKey(key: string): TlsAttempt {
  // Keys counted before sendingIp was kept have 7 fields.
  const [domain, policy, result, mx, address, policyString, mxHost, sendingIp = ''] = JSON.parse(key) as [
    string,
    TlsAttempt['policy'],
    TlsAttempt['result'],
    string,
    string,
    string[],
    string[],
    string?,
  ];
  return { domain, policy, result, mx, address, policyString, mxHost, sendingIp };
}

/** The report's policies per domain (RFC 8460 §4.4) from counted attempts. Pure. */
export function aggregate(counts: AttemptCounts): Map<string, PolicyTally[]> {
  const domains = new Map<string, Map<string, PolicyTally>>();
  for (const [attempt, n] of counts) {
    const domain = attempt.domain.toLowerCase();
    let policies = domains.get(domain);
    if (!policies) domains.set(domain, (policies = new Map()));
    const type = policyType(attempt.policy);
    const key = JSON.stringify([type, attempt.policyString, attempt.mxHost]);
    let tally = policies.get(key);
    if (!tally)
      policies.set(
        key,
        (tally = {
          type,
          policyString: [...attempt.policyString],
          mxHost: [...attempt.mxHost],
          successes: 0,
          failures: [],
        }),
      );
    if (attempt.result === 'success') {
      tally.successes += n;
      continue;
    }
    const same = tally.failures.find(
      (f) =>
        f.resultType === attempt.result &&
        f.mx === attempt.mx &&
        f.address === attempt.address &&
        f.sendingIp === attempt.sendingIp,
    );
    if (same) same.count += n;
    else
      tally.failures.push({
        resultType: attempt.result,
        mx: attempt.mx,
        address: attempt.address,
        sendingIp: attempt.sendingIp,
        count: n,
      });
  }
  return new Map([...domains].map(([domain, policies]) => [domain, [...policies.values()]]));
}

/** Domains kept per day: a bound on memory; attempts to further domains are dropped (counted). */
const MAX_DOMAINS_PER_DAY = 10000;

/** A tally as written to disk (state-file.ts): day -> attempt key -> count, and partial reports. */
export interface TallySnapshot {
  days: Record<string, Record<string, number>>;
  /** day -> time (ms) up to which that day was already reported (POST /api/tlsrpt/send). */
  reportedUntil: Record<string, number>;
}

/** A report's period (RFC 8460 §4.4 date-range), ms since the epoch, both ends included. */
export interface ReportPeriod {
  start: number;
  end: number;
}

/** The period of a whole UTC day. */
export function dayPeriod(day: string): ReportPeriod {
  return { start: Date.parse(`${day}T00:00:00Z`), end: Date.parse(`${day}T23:59:59Z`) };
}

export class TlsTally {
  /** day -> attempt key -> count. */
  private readonly days = new Map<string, Map<string, number>>();
  /** day -> domains counted that day (for the bound). */
  private readonly domains = new Map<string, Set<string>>();
  /** day -> end (ms) of a report already sent for part of that day; its next report starts there. */
  private readonly reportedUntil = new Map<string, number>();
  /** Attempts dropped because a day already had MAX_DOMAINS_PER_DAY domains. */
  dropped = 0;

  record(attempt: TlsAttempt, now: number): void {
    this.add(dayOf(now), attemptKey(attempt), 1);
  }

  private add(day: string, key: string, n: number): void {
    let domains = this.domains.get(day);
    if (!domains) this.domains.set(day, (domains = new Set()));
    const domain = attemptOfKey(key).domain.toLowerCase();
    if (!domains.has(domain)) {
      if (domains.size >= MAX_DOMAINS_PER_DAY) {
        this.dropped += n;
        return;
      }
      domains.add(domain);
    }
    let counts = this.days.get(day);
    if (!counts) this.days.set(day, (counts = new Map()));
    counts.set(key, (counts.get(key) ?? 0) + n);
  }

  /** Days before the one `now` is in that have counts, oldest first. */
  finishedDays(now: number): string[] {
    const today = dayOf(now);
    return [...this.days.keys()].filter((d) => d < today).sort();
  }

  /** The period a report of `day` sent at `now` covers: from the end of an earlier partial one. */
  period(day: string, now: number): ReportPeriod {
    const whole = dayPeriod(day);
    const after = this.reportedUntil.get(day);
    // Reports name whole seconds: the next one starts at the second after the earlier one's end.
    const start = after === undefined ? whole.start : after - (after % 1000) + 1000;
    return { start, end: Math.min(whole.end, now) };
  }

  /**
   * A day's counts, removed from the tally. `until` (a day not over yet): the report covers the
   * day up to then, and what is counted afterwards makes the day's next report.
   */
  take(day: string, until?: number): [TlsAttempt, number][] {
    const counts = this.days.get(day) ?? new Map<string, number>();
    this.days.delete(day);
    this.domains.delete(day);
    // Marks of earlier days are done with (a day partly reported and then quiet leaves one).
    for (const d of this.reportedUntil.keys()) if (d <= day) this.reportedUntil.delete(d);
    if (until !== undefined) this.reportedUntil.set(day, until);
    return [...counts].map(([key, n]) => [attemptOfKey(key), n]);
  }

  snapshot(): TallySnapshot {
    return {
      days: Object.fromEntries([...this.days].map(([day, counts]) => [day, Object.fromEntries(counts)])),
      reportedUntil: Object.fromEntries(this.reportedUntil),
    };
  }

  /** Adds the counts of a snapshot (the state file read at start) to this tally. */
  restore(snapshot: TallySnapshot): void {
    for (const [day, counts] of Object.entries(snapshot.days))
      for (const [key, n] of Object.entries(counts)) this.add(day, key, n);
    for (const [day, until] of Object.entries(snapshot.reportedUntil)) this.reportedUntil.set(day, until);
  }
}
