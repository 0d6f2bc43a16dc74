// The DNS side of DANE for one delivery: whether the MX RRset was validated, and per MX host its
// address and TLSA lookups (`_25._tcp.<host>`, RFC 7672 §2.2.3; at the CNAME-expanded name first
// when the host name is a CNAME) through the validating resolver.
import type { SecureAnswer, SecureRecordType, SecureResolver } from './resolver.ts';
import { daneHostAt, expandedName } from './cname.ts';
import type { DaneHost } from './tlsa.ts';

export interface DaneLookup {
  /** The MX RRset was validated: the next-hop domain is also a name a DANE-TA chain may show. */
  mxSecure: boolean;
  hosts: Map<string, DaneHost>;
}

export async function lookupDane(
  resolver: SecureResolver,
  domain: string,
  mxHosts: readonly string[],
): Promise<DaneLookup> {
  // A timeout or network error is an indeterminate answer (RFC 4035 §4.3), treated like SERVFAIL.
  const ask = (name: string, type: SecureRecordType) =>
    resolver.query(name, type).catch((err: Error & { code?: string }): SecureAnswer => ({
      rcode: err.code ?? 'ERROR',
      authenticated: false,
      answers: [],
    }));
  const tlsaAt = (base: string) => ask(`_25._tcp.${base}`, 'TLSA');
  const mx = ask(domain, 'MX');
  const hosts = await Promise.all(
    mxHosts.map(async (name) => {
      // The MX host name's TLSA records are asked for with its addresses (most hosts are no
      // CNAME); an expanded name's only once the address answers showed it.
      const [a, aaaa, own] = await Promise.all([ask(name, 'A'), ask(name, 'AAAA'), tlsaAt(name)]);
      const expanded = expandedName(name, [a, aaaa]);
      const tlsa = [
        ...(expanded ? [{ base: expanded, answer: await tlsaAt(expanded) }] : []),
        { base: name, answer: own },
      ];
      return [name, daneHostAt({ a, aaaa }, tlsa)] as const;
    }),
  );
  const m = await mx;
  return { mxSecure: m.rcode === 'NOERROR' && m.authenticated, hosts: new Map(hosts) };
}
