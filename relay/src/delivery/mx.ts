// Direct-delivery routing (RFC 5321 §5.1): MX records in preference order, the domain's own
// A/AAAA when it has no MX, a permanent failure for NXDOMAIN and for a null MX (RFC 7505).
import { Resolver } from 'node:dns/promises';

export interface MxHost {
  /** Host name from the MX record (or the domain itself for the implicit MX). */
  name: string;
  addresses: string[];
}

export type RouteResult = { ok: true; hosts: MxHost[] } | { ok: false; permanent: boolean; reply: string };

export interface DnsClient {
  resolveMx(domain: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** The relay's resolver: MX and address lookups, and TXT for MTA-STS. */
export function dnsClient(servers: readonly string[], timeoutMs: number): Resolver {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  return resolver;
}

const NOT_FOUND = new Set(['ENOTFOUND']);
const NO_DATA = new Set(['ENODATA']);

export async function routeDomain(domain: string, dns: DnsClient): Promise<RouteResult> {
  let mx: { exchange: string; priority: number }[];
  try {
    mx = await dns.resolveMx(domain);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (NOT_FOUND.has(code))
      return { ok: false, permanent: true, reply: `550 5.1.2 ${domain}: domain not found` };
    if (!NO_DATA.has(code)) return { ok: false, permanent: false, reply: `451 4.4.3 ${domain}: DNS ${code}` };
    mx = [];
  }
  if (mx.length === 1 && (mx[0]?.exchange === '' || mx[0]?.exchange === '.')) {
    return {
      ok: false,
      permanent: true,
      reply: `556 5.1.10 ${domain}: domain does not accept mail (null MX)`,
    };
  }
  // Equal preferences are shuffled (RFC 5321 §5.1) so load spreads over them.
  const ordered = mx
    .map((r) => ({ ...r, tie: Math.random() }))
    .sort((a, b) => a.priority - b.priority || a.tie - b.tie)
    .map((r) => r.exchange);
  const names = ordered.length > 0 ? ordered : [domain];
  const hosts: MxHost[] = [];
  // A lookup that failed for another reason than "no such name/no data" (SERVFAIL, timeout)
  // says nothing about the domain: the message must be deferred, never bounced.
  let transientFailure = '';
  for (const name of names) {
    const v4 = await lookup(dns.resolve4.bind(dns), name);
    const v6 = await lookup(dns.resolve6.bind(dns), name);
    transientFailure ||= v4.transient || v6.transient;
    const addresses = [...v4.addresses, ...v6.addresses];
    if (addresses.length > 0) hosts.push({ name, addresses });
  }
  if (hosts.length === 0) {
    if (ordered.length > 0) {
      return { ok: false, permanent: false, reply: `451 4.4.4 ${domain}: no address for any MX host` };
    }
    if (transientFailure) {
      return { ok: false, permanent: false, reply: `451 4.4.3 ${domain}: DNS ${transientFailure}` };
    }
    return { ok: false, permanent: true, reply: `550 5.1.2 ${domain}: no MX and no address record` };
  }
  return { ok: true, hosts };
}

async function lookup(
  fn: (name: string) => Promise<string[]>,
  name: string,
): Promise<{ addresses: string[]; transient: string }> {
  try {
    return { addresses: await fn(name), transient: '' };
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    return { addresses: [], transient: NOT_FOUND.has(code) || NO_DATA.has(code) ? '' : code };
  }
}
