// The day's TLS results per policy domain (RFC 8460 §4): each delivery attempt's session counted
// once, as a success or under its failure, per UTC day. The reporter takes a day's tally once the
// day is over. Kept in memory by each relay.
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
  count: number;
}

export interface PolicyTally {
  type: PolicyType;
  policyString: string[];
  mxHost: string[];
  successes: number;
  failures: FailureCount[];
}

/** UTC day of a time, `YYYY-MM-DD`. */
function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Domains kept per day: a bound on memory; attempts to further domains are dropped (counted). */
const MAX_DOMAINS_PER_DAY = 10000;

export class TlsTally {
  /** day -> policy domain -> policy key -> tally. */
  private readonly days = new Map<string, Map<string, Map<string, PolicyTally>>>();
  /** Attempts dropped because a day already had MAX_DOMAINS_PER_DAY domains. */
  dropped = 0;

  record(attempt: TlsAttempt, now: number): void {
    const day = dayOf(now);
    let domains = this.days.get(day);
    if (!domains) this.days.set(day, (domains = new Map()));
    const domain = attempt.domain.toLowerCase();
    let policies = domains.get(domain);
    if (!policies) {
      if (domains.size >= MAX_DOMAINS_PER_DAY) {
        this.dropped++;
        return;
      }
      domains.set(domain, (policies = new Map()));
    }
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
      tally.successes++;
      return;
    }
    const same = tally.failures.find(
      (f) => f.resultType === attempt.result && f.mx === attempt.mx && f.address === attempt.address,
    );
    if (same) same.count++;
    else
      tally.failures.push({ resultType: attempt.result, mx: attempt.mx, address: attempt.address, count: 1 });
  }

  /** Days before the one `now` is in that have results, oldest first. */
  finishedDays(now: number): string[] {
    const today = dayOf(now);
    return [...this.days.keys()].filter((d) => d < today).sort();
  }

  /** A day's tallies by policy domain, removed from the tally. */
  take(day: string): Map<string, PolicyTally[]> {
    const domains = this.days.get(day) ?? new Map<string, Map<string, PolicyTally>>();
    this.days.delete(day);
    return new Map([...domains].map(([domain, policies]) => [domain, [...policies.values()]]));
  }
}
