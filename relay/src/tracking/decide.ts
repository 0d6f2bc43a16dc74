// Whether a message's HTML is rewritten, and for which domain. Pure.
import type { TrackingHeaders } from './headers.ts';

export interface DomainTracking {
  opens: boolean;
  clicks: boolean;
  /** Host name of the tracking endpoint (served over HTTPS by the user's Ingress or Gateway). */
  host: string;
}

export type TrackingDecision =
  | { track: true; domain: string; tracking: DomainTracking }
  | {
      track: false;
      /**
       * untracked: the domain does not track (or is not a sending domain); signed-by-sender: the
       * message carries a DKIM signature of that domain already, which a rewrite would break;
       * too-large: over the size limit for rewriting.
       */
      reason: 'untracked' | 'signed-by-sender' | 'too-large';
      domain?: string;
    };

export interface DecisionInput {
  headerFromDomain: string;
  envelopeDomain: string;
  size: number;
  maxMessageBytes: number;
  domains: ReadonlyMap<string, DomainTracking>;
  headers: () => TrackingHeaders;
}

export function decideTracking(input: DecisionInput): TrackingDecision {
  // The header From domain first (the one the reader sees and DMARC aligns), as for DKIM keys.
  const domain = input.domains.has(input.headerFromDomain) ? input.headerFromDomain : input.envelopeDomain;
  const tracking = input.domains.get(domain);
  if (!tracking || (!tracking.opens && !tracking.clicks)) return { track: false, reason: 'untracked' };
  if (input.size > input.maxMessageBytes) return { track: false, reason: 'too-large', domain };
  if (input.headers().dkimDomains.includes(domain))
    return { track: false, reason: 'signed-by-sender', domain };
  return { track: true, domain, tracking };
}
