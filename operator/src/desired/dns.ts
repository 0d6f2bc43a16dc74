// The DNS records a SendingDomain needs, and the comparison with what DNS actually serves. Pure.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { DefaultedSendingDomainSpec, DNSRecord } from '../api/types.ts';

type PublicKey = { k: 'rsa' | 'ed25519'; p: string };

/**
 * Parsed keys by PEM: every reconcile of a pool derives each domain's DNS record from its key, and
 * parsing PEMs was the largest part of a reconcile's CPU. The result depends only on the PEM, so
 * the memo does not change what the functions return. Bounded: the oldest entries go first.
 */
const parsed = new Map<string, PublicKey | undefined>();
const PARSED_MAX = 20_000;

function parse(pem: string): PublicKey | undefined {
  if (parsed.has(pem)) return parsed.get(pem);
  let result: PublicKey | undefined;
  try {
    const key = createPublicKey(createPrivateKey(pem));
    // RFC 8463: an ed25519 p= is the raw 32-byte key, not the SPKI structure.
    if (key.asymmetricKeyType === 'ed25519') {
      const x = key.export({ format: 'jwk' }).x ?? '';
      result = { k: 'ed25519', p: Buffer.from(x, 'base64url').toString('base64') };
    } else if (key.asymmetricKeyType === 'rsa') {
      result = { k: 'rsa', p: key.export({ type: 'spki', format: 'der' }).toString('base64') };
    }
  } catch {
    result = undefined;
  }
  if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value as string);
  parsed.set(pem, result);
  return result;
}

/** Whether a PEM holds an RSA or Ed25519 private key: what DKIM signs with (RFC 6376, RFC 8463). */
export const isPrivateKeyPem = (pem: string): boolean => parse(pem) !== undefined;

/** The DKIM public key of a PEM private key, as the p= tag wants it (RFC 6376 §3.6.1, RFC 8463). */
export function dkimPublicKey(pem: string): PublicKey {
  const key = parse(pem);
  if (!key) throw new Error('not a PEM private key');
  return key;
}

export function dkimRecord(domain: string, selector: string, pem: string): DNSRecord {
  const { k, p } = dkimPublicKey(pem);
  return { name: `${selector}._domainkey.${domain}`, type: 'TXT', value: `v=DKIM1; k=${k}; p=${p}` };
}

export type SpfOptions = { domain: string; returnPath?: string; include?: string; ehloName?: string };

/** SPF is checked against the envelope sender, so it goes on the return-path domain. */
export function spfRecord(o: SpfOptions): DNSRecord {
  const mechanism = o.include ? `include:${o.include}` : o.ehloName ? `a:${o.ehloName}` : 'mx';
  return { name: o.returnPath ?? o.domain, type: 'TXT', value: `v=spf1 ${mechanism} ~all` };
}

/**
 * Bounces and complaints are sent to the return-path domain's MX: the relays' public name (their
 * EHLO name), which must resolve to the pool's return-path Service. RFC 5321 §5.1: the exchange is
 * a host name, never an address.
 */
export function mxRecord(returnPath: string, exchange: string): DNSRecord {
  return { name: returnPath, type: 'MX', value: `10 ${exchange}.` };
}

/** Start at p=none with reports: tighten to quarantine once the reports show only aligned mail. */
export function dmarcRecord(domain: string): DNSRecord {
  return {
    name: `_dmarc.${domain}`,
    type: 'TXT',
    value: `v=DMARC1; p=none; rua=mailto:dmarc-reports@${domain}; adkim=r; aspf=r`,
  };
}

/** TXT answers per record name: each answer is the list of character-strings of one record. */
export type TxtAnswers = Record<string, string[][] | { error: string }>;

const normalise = (value: string) => value.replace(/\s+/g, '').replace(/;$/, '').toLowerCase();

/** Every mismatch between the records to publish and the answers, spelled out; [] when verified. */
export function dnsMismatches(records: DNSRecord[], answers: TxtAnswers): string[] {
  const problems: string[] = [];
  for (const record of records) {
    const name = record.name ?? '';
    const answer = answers[name];
    if (!answer) continue;
    if (!Array.isArray(answer)) {
      problems.push(`${name} TXT: lookup failed (${answer.error})`);
      continue;
    }
    const texts = answer.map((parts) => parts.join(''));
    const value = record.value ?? '';
    const tag = value.split(' ')[0] ?? '';
    const sameKind = texts.filter((t) => t.toLowerCase().startsWith(tag.toLowerCase()));
    if (sameKind.length === 0) {
      problems.push(`${name} TXT: no ${tag.replace(/;$/, '')} record published; expected "${value}"`);
    } else if (tag.startsWith('v=DKIM1') && !sameKind.some((t) => normalise(t) === normalise(value))) {
      problems.push(`${name} TXT: published "${sameKind[0]}" differs from the key in use "${value}"`);
    }
  }
  return problems;
}

/** The TXT names verification looks up for a domain (the names dnsRecords() publishes). */
export function recordNames(
  spec: Pick<DefaultedSendingDomainSpec, 'domain' | 'returnPath' | 'dkim'>,
): string[] {
  const fqdn = spec.domain.toLowerCase();
  return [`${spec.dkim.selector}._domainkey.${fqdn}`, spec.returnPath ?? fqdn, `_dmarc.${fqdn}`];
}
