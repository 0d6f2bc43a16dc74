// Which TLS a direct delivery needs and whether a connection met it. Pure: the pool reports what
// the TLS handshake showed, these functions decide. Failure reasons are RFC 8460 §4.3 result types,
// so the accounting log, the metrics and TLS reports name failures alike.
import type { OutboundTlsConfig, OutboundTlsPolicy } from '../config/types.ts';
import { domainMatches } from '../shaping/match.ts';
import type { StsPlan } from './mta-sts/policy.ts';
import { matchDane, type DaneExpectation } from './dane/tlsa.ts';

/** What a connection must show before any mail goes over it; `dane`: a chain its TLSA records match. */
export type TlsRequirement = 'none' | 'encrypt' | 'verify' | 'dane';

/** RFC 8460 §4.3 result types this relay can observe. */
export type TlsFailure =
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid'
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'tlsa-invalid'
  | 'dnssec-invalid';

/** What the finished handshake (or its absence) showed, as Node's TLSSocket reports it. */
export interface TlsFacts {
  /** STARTTLS succeeded (the session continues over TLS). */
  secure: boolean;
  /** The chain verified against the trusted CAs and named the server (checkServerIdentity). */
  authorized: boolean;
  /** Node's reason when not authorized: an OpenSSL code or ERR_TLS_CERT_ALTNAME_INVALID. */
  authorizationError?: string | undefined;
  /** The certificates the server presented, DER, its own first (read for `dane`). */
  chain?: readonly Buffer[] | undefined;
}

export type TlsVerdict = { ok: true } | { ok: false; failure: TlsFailure; detail: string };

/** The policy of a recipient domain: an exact override, else the first `*.` one, else the default. */
export function policyFor(domain: string, config: OutboundTlsConfig): OutboundTlsPolicy {
  const d = domain.toLowerCase();
  const exact = config.destinations.find((x) => x.domain === d);
  if (exact) return exact.policy;
  const wildcard = config.destinations.find((x) => x.domain.startsWith('*.') && domainMatches(x.domain, d));
  return wildcard?.policy ?? config.default;
}

/** The policy that applied to one delivery: `mta-sts` becomes what the domain publishes. */
export type AppliedTlsPolicy =
  | Exclude<OutboundTlsPolicy, 'mta-sts' | 'dane-mta-sts'>
  | 'mta-sts'
  | 'mta-sts-testing'
  /** Smarthost delivery: `delivery.smarthost.tls`, which nodemailer enforces. */
  | 'smarthost';

export interface DirectTlsPlan {
  applied: AppliedTlsPolicy;
  requirement: TlsRequirement;
  /** MTA-STS testing mode: a failed requirement is reported, the mail still goes (RFC 8461 §5). */
  reportOnly: boolean;
  /** MX hosts that may be tried, in the given order; none: defer. */
  hosts: string[];
  /** MX hosts a testing-mode policy does not list (reported only). */
  mismatched: string[];
}

/**
 * What a delivery to `mxHosts` must do under the domain's configured policy and, for `mta-sts`,
 * the plan of its published policy (none published: as if the domain had no policy, §5).
 */
export function directTlsPlan(
  policy: OutboundTlsPolicy,
  sts: StsPlan | undefined,
  mxHosts: readonly string[],
): DirectTlsPlan {
  const plan = (applied: AppliedTlsPolicy, requirement: TlsRequirement): DirectTlsPlan => ({
    applied,
    requirement,
    reportOnly: false,
    hosts: [...mxHosts],
    mismatched: [],
  });
  switch (policy) {
    // DANE is decided per MX host (dane/plan.ts); this is the plan of hosts without TLSA records.
    case 'dane':
    case 'opportunistic':
      return plan('opportunistic', 'none');
    case 'encrypt':
      return plan('encrypt', 'encrypt');
    case 'verify':
      return plan('verify', 'verify');
    case 'dane-mta-sts':
    case 'mta-sts':
      if (!sts || sts.mode === 'none') return plan('opportunistic', 'none');
      if (sts.mode === 'enforce') return { ...plan('mta-sts', 'verify'), hosts: [...sts.allowed] };
      return { ...plan('mta-sts-testing', 'verify'), reportOnly: true, mismatched: [...sts.mismatched] };
  }
}

// OpenSSL's verify codes (X509_V_ERR_*) as Node names them, by what they mean to a sender.
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/** Whether a connection may carry mail under `requirement` (`dane`: against `dane`'s records at `now`). */
export function judgeTls(
  requirement: TlsRequirement,
  facts: TlsFacts,
  dane?: DaneExpectation,
  now: Date = new Date(),
): TlsVerdict {
  if (requirement === 'none') return { ok: true };
  if (!facts.secure)
    return { ok: false, failure: 'starttls-not-supported', detail: 'no STARTTLS, or it was refused' };
  if (requirement === 'dane') {
    if (!dane) return { ok: false, failure: 'tlsa-invalid', detail: 'no TLSA records to check against' };
    const verdict = matchDane(dane, facts.chain ?? [], now);
    return verdict.ok ? verdict : { ok: false, failure: 'tlsa-invalid', detail: verdict.detail };
  }
  if (requirement === 'encrypt' || facts.authorized) return { ok: true };
  const code = facts.authorizationError ?? 'unknown';
  const failure: TlsFailure =
    code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? 'certificate-host-mismatch'
      : EXPIRED.has(code)
        ? 'certificate-expired'
        : UNTRUSTED.has(code)
          ? 'certificate-not-trusted'
          : 'validation-failure';
  return { ok: false, failure, detail: code };
}
