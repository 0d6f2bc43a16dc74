// Which RateLimits apply to a message. Every criterion a limit lists must match; a criterion it
// leaves empty matches anything. Domains match exactly or by a leading "*." (subdomains only,
// as in Postfix transport maps: "*.example.com" does not match "example.com" itself).

export interface LimitMatch {
  senderDomains: string[];
  senderAddresses: string[];
  recipientDomains: string[];
  /** MX rollup: the destination's MX hosts must match one of these. */
  recipientMXHosts: string[];
}

export interface MessageTraits {
  sender: string;
  senderDomain: string;
  recipientDomain: string;
  /** MX hosts of the recipient domain, when known (direct delivery). */
  mxHosts: string[];
}

export function domainMatches(pattern: string, domain: string): boolean {
  const p = pattern.toLowerCase();
  const d = domain.toLowerCase();
  if (p.startsWith('*.')) return d.endsWith(p.slice(1)) && d.length > p.length - 1;
  return p === d;
}

const anyOf = (patterns: string[], value: string) => patterns.some((p) => domainMatches(p, value));

export function limitMatches(match: LimitMatch, message: MessageTraits): boolean {
  if (match.senderDomains.length > 0 && !anyOf(match.senderDomains, message.senderDomain)) return false;
  if (
    match.senderAddresses.length > 0 &&
    !match.senderAddresses.some((a) => a.toLowerCase() === message.sender.toLowerCase())
  ) {
    return false;
  }
  if (match.recipientDomains.length > 0 && !anyOf(match.recipientDomains, message.recipientDomain))
    return false;
  if (match.recipientMXHosts.length > 0 && !message.mxHosts.some((mx) => anyOf(match.recipientMXHosts, mx)))
    return false;
  return true;
}

/**
 * The destination key a limit counts connections against: with MX rollup, every domain served by
 * the same MX hosts is one destination (KumoMTA's "site name"); otherwise the recipient domain.
 */
export function destinationKey(match: LimitMatch, message: MessageTraits): string {
  if (match.recipientMXHosts.length > 0 && message.mxHosts.length > 0) {
    return `mx:${[...new Set(message.mxHosts.map((h) => h.toLowerCase().replace(/\.$/, '')))].sort().join(',')}`;
  }
  return message.recipientDomain.toLowerCase();
}
