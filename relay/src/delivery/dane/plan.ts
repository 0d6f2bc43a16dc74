// Which MX hosts may get a delivery and what TLS each needs, once DANE has been looked up: DANE
// decides for the hosts with validated TLSA records (it takes precedence over MTA-STS, RFC 8461
// §2), the destination's other plan for the rest. Pure.
import type { AppliedTlsPolicy, DirectTlsPlan, TlsFailure, TlsRequirement } from '../tls-policy.ts';
import type { DaneLookup } from './lookup.ts';
import type { DaneExpectation } from './tlsa.ts';

export interface HostTls {
  /** MX host name. */
  name: string;
  /** Addresses from validated DNS (DANE hosts); undefined: the route's. */
  addresses?: string[];
  policy: AppliedTlsPolicy;
  requirement: TlsRequirement;
  reportOnly: boolean;
  dane?: DaneExpectation;
}

export interface HostTlsPlan {
  /** In MX order. */
  hosts: HostTls[];
  /** Hosts left out because their DANE lookups failed (RFC 7672 §2.2: never downgraded). */
  excluded: { name: string; failure: TlsFailure; detail: string }[];
}

export function hostTlsPlan(
  domain: string,
  mxHosts: readonly string[],
  fallback: DirectTlsPlan,
  dane: DaneLookup | undefined,
): HostTlsPlan {
  const plan: HostTlsPlan = { hosts: [], excluded: [] };
  for (const name of mxHosts) {
    const found = dane?.hosts.get(name);
    if (found?.kind === 'failure') {
      plan.excluded.push({ name, failure: 'dnssec-invalid', detail: found.detail });
    } else if (found?.kind === 'dane') {
      // §3.2.2: the TLSA base domain, the MX host name when it is a CNAME to it, and the domain
      // itself only when the MX RRset was validated.
      const names = [...new Set([found.base, name, ...(dane!.mxSecure ? [domain] : [])])];
      plan.hosts.push({
        name,
        addresses: found.addresses,
        policy: 'dane',
        requirement: 'dane',
        reportOnly: false,
        dane: { records: found.records, names },
      });
    } else if (found?.kind === 'encrypt') {
      plan.hosts.push({
        name,
        addresses: found.addresses,
        policy: 'dane',
        requirement: 'encrypt',
        reportOnly: false,
      });
    } else if (fallback.hosts.includes(name)) {
      plan.hosts.push({
        name,
        policy: fallback.applied,
        requirement: fallback.requirement,
        reportOnly: fallback.reportOnly,
      });
    }
  }
  return plan;
}
