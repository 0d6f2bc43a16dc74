// Which TLS a direct delivery needs and whether a connection met it. Pure: the pool reports what
// the TLS handshake showed, these functions decide. Failure reasons are RFC 8460 §4.3 result types,
// so the accounting log, the metrics and TLS reports name failures alike.
import type { OutboundTlsConfig, OutboundTlsPolicy } from '../config/types.ts';
import { domainMatches } from '../shaping/match.ts';

/** What a connection must show before any mail goes over it. */
export type TlsRequirement = 'none' | 'encrypt' | 'verify';

/** RFC 8460 §4.3 result types this relay can observe. */
export type TlsFailure =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure';

/** What the finished handshake (or its absence) showed, as Node's TLSSocket reports it. */
export interface TlsFacts {
  /** STARTTLS succeeded (the session continues over TLS). */
  secure: boolean;
  /** The chain verified against the trusted CAs and named the server (checkServerIdentity). */
  authorized: boolean;
  /** Node's reason when not authorized: an OpenSSL code or ERR_TLS_CERT_ALTNAME_INVALID. */
  authorizationError?: string | undefined;
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

const REQUIREMENT: Record<OutboundTlsPolicy, TlsRequirement> = {
  opportunistic: 'none',
  encrypt: 'encrypt',
  verify: 'verify',
};

export function requirementOf(policy: OutboundTlsPolicy): TlsRequirement {
  return REQUIREMENT[policy];
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

/** Whether a connection may carry mail under `requirement`. */
export function judgeTls(requirement: TlsRequirement, facts: TlsFacts): TlsVerdict {
  if (requirement === 'none') return { ok: true };
  if (!facts.secure)
    return { ok: false, failure: 'starttls-not-supported', detail: 'no STARTTLS, or it was refused' };
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
