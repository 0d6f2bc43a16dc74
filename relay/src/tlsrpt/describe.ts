// How a report names the policy that applied (RFC 8460 §4.4 policy-string and mx-host): the
// MTA-STS policy as its lines, or the DANE host's TLSA records in presentation format. Pure.
import type { StsPolicy } from '../delivery/mta-sts/policy.ts';
import type { TlsaRecord } from '../delivery/dane/tlsa.ts';

export interface PolicyDescription {
  policyString: string[];
  mxHost: string[];
}

export const NO_POLICY: PolicyDescription = { policyString: [], mxHost: [] };

export function stsDescription(policy: StsPolicy): PolicyDescription {
  return {
    policyString: [
      'version: STSv1',
      `mode: ${policy.mode}`,
      ...policy.mx.map((m) => `mx: ${m}`),
      `max_age: ${policy.maxAge}`,
    ],
    mxHost: [...policy.mx],
  };
}

export function tlsaDescription(mx: string, records: readonly TlsaRecord[]): PolicyDescription {
  return {
    policyString: records.map((r) => `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`),
    mxHost: [mx],
  };
}
