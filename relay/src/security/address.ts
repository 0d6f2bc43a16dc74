// Envelope address checks that keep the relay from being used as an open relay through address
// tricks. smtp-server has already removed an RFC 5321 source route ("@a,@b:user@c", accepted and
// ignored per §4.1.2 and Appendix C) and refused control characters; what reaches these checks is
// the address as the client wrote it otherwise.

/** Why an address was refused; each has one SMTP reply in the relay's error catalogue. */
export type AddressTrick =
  | 'no-domain' // "user" or "user@": nowhere to relay to, or a local alias on the next hop
  | 'percent-hack' // "victim%other.example@relay": the next hop may route to other.example
  | 'bang-path' // "other!victim@relay": UUCP routing on the next hop
  | 'quoted-routing' // "\"victim@other\"@relay": a quoted local part hiding another address
  | 'source-route' // a source route that survived parsing ("@a:b@c" inside the address)
  | 'bad-domain' // a domain that is not a DNS name (or an address literal)
  | 'too-long'; // RFC 5321 §4.5.3.1: local part ≤ 64, domain ≤ 255, path ≤ 256

export type AddressCheck =
  { ok: true; localPart: string; domain: string } | { ok: false; trick: AddressTrick };

const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const addressLiteral = /^\[(IPv6:[0-9a-f:.]+|[0-9.]+)\]$/i;

/** Splits at the last "@" outside a quoted local part. */
function split(address: string): { localPart: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return { localPart: address.slice(0, at), domain: address.slice(at + 1) };
}

function domainIsValid(domain: string): boolean {
  if (addressLiteral.test(domain)) return true;
  const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  const labels = name.split('.');
  // A bare host name ("localhost") is a local alias on the next hop, never a relay destination.
  if (labels.length < 2) return false;
  return labels.every((l) => label.test(l) || /^xn--[a-z0-9-]+$/i.test(l));
}

export function checkAddress(address: string): AddressCheck {
  if (address.length > 256) return { ok: false, trick: 'too-long' };
  const parts = split(address);
  if (!parts) return { ok: false, trick: 'no-domain' };
  const { localPart, domain } = parts;
  if (localPart.length > 64 || domain.length > 255) return { ok: false, trick: 'too-long' };
  if (localPart.startsWith('@') || (localPart.includes(':') && localPart.includes('@'))) {
    return { ok: false, trick: 'source-route' };
  }
  if (localPart.startsWith('"')) {
    // A quoted local part may legally hold "@", "%" and "!"; on a relay they only ever serve to
    // smuggle a second destination past the domain check, so refuse them.
    if (/[@%!]/.test(localPart)) return { ok: false, trick: 'quoted-routing' };
  } else {
    if (localPart.includes('@')) return { ok: false, trick: 'quoted-routing' };
    if (localPart.includes('%')) return { ok: false, trick: 'percent-hack' };
    if (localPart.includes('!')) return { ok: false, trick: 'bang-path' };
  }
  if (!domainIsValid(domain)) return { ok: false, trick: 'bad-domain' };
  return { ok: true, localPart, domain: domain.toLowerCase().replace(/\.$/, '') };
}
