// An MX host name that is a CNAME (RFC 7672 §2.2.3, RFC 7671 §7): its TLSA records are looked up at
// the name the CNAME chain ends at (the "expanded name") first, then at the MX host name itself.
// The chain's security needs no check of its own: the validating resolver sets the AD bit of an
// address answer only when every CNAME of the chain and the address records validated, so an
// insecure link leaves the addresses unvalidated and DANE out (daneHost). Pure.
import type { SecureAnswer } from './resolver.ts';
import { daneHost, type DaneHost } from './tlsa.ts';

/** Resolvers stop CNAME chains long before this (unbound: 11 links); a loop ends here too. */
const MAX_CHAIN = 16;

const canonical = (name: string) => name.toLowerCase().replace(/\.$/, '');

/**
 * The name the CNAME records of the validated address answers lead to from `initial`; none: it is
 * no CNAME, or no answer showing the chain validated (nothing unvalidated is followed).
 */
export function expandedName(initial: string, answers: readonly SecureAnswer[]): string | undefined {
  const links = new Map<string, string>();
  for (const answer of answers.filter((a) => a.authenticated && a.rcode === 'NOERROR'))
    for (const x of answer.answers) if (x.type === 'CNAME') links.set(canonical(x.name), canonical(x.data));
  let name = canonical(initial);
  for (let i = 0; i < MAX_CHAIN && links.has(name); i++) name = links.get(name)!;
  return name === canonical(initial) ? undefined : name;
}

/**
 * The host's DANE decision from the TLSA answers at its base domains, the expanded name's first:
 * the first base with validated records, or whose lookup failed, decides (a failure is never
 * skipped for the next name: §2.2 forbids the downgrade); without any, DANE does not apply.
 */
export function daneHostAt(
  address: { a: SecureAnswer; aaaa: SecureAnswer },
  tlsa: readonly { base: string; answer: SecureAnswer }[],
): DaneHost {
  let host: DaneHost = { kind: 'none', reason: 'no TLSA records' };
  for (const { base, answer } of tlsa) {
    host = daneHost(address, answer, base);
    if (host.kind !== 'none') return host;
  }
  return host;
}
