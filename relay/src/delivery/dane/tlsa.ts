// DANE for SMTP (RFC 7672): what validated DNS answers say about one MX host, and whether the
// certificate chain a server presented matches its TLSA records. Pure: the answers and the chain
// come in, a decision goes out.
import { createHash, X509Certificate } from 'node:crypto';
import type { SecureAnswer } from './resolver.ts';

/** A TLSA record (RFC 6698 §2.1). */
export interface TlsaRecord {
  /** 2 DANE-TA, 3 DANE-EE; 0 and 1 (PKIX-*) are unusable in SMTP (RFC 7672 §3.1.3). */
  usage: number;
  /** 0 full certificate, 1 SubjectPublicKeyInfo. */
  selector: number;
  /** 0 exact, 1 SHA-256, 2 SHA-512. */
  matchingType: number;
  data: Buffer;
}

/** What DANE asks of the connections to one MX host. */
export type DaneHost =
  /** Secure, usable TLSA records at `base` (the TLSA base domain): TLS required, the chain must match a record. */
  | { kind: 'dane'; records: TlsaRecord[]; addresses: string[]; base: string }
  /** Secure TLSA records, none usable: TLS still required, not authenticated (RFC 7672 §2.2). */
  | { kind: 'encrypt'; addresses: string[] }
  /** No validated TLSA records: DANE does not apply, the destination's other policy does. */
  | { kind: 'none'; reason: string }
  /** A lookup failed or the resolver found the data bogus: the host must not be used (§2.2). */
  | { kind: 'failure'; detail: string };

const USABLE = (r: TlsaRecord) =>
  (r.usage === 2 || r.usage === 3) && (r.selector === 0 || r.selector === 1) && r.matchingType <= 2;

// A validating resolver answers SERVFAIL for bogus data; either way nothing about the host is known.
const failed = (a: SecureAnswer) => a.rcode !== 'NOERROR' && a.rcode !== 'NXDOMAIN';

/**
 * RFC 7672 §2.2: TLSA records count only when the host's address records and the TLSA RRset were
 * both validated; a failed or bogus lookup makes the host unusable, it is never downgraded.
 */
export function daneHost(
  address: { a: SecureAnswer; aaaa: SecureAnswer },
  tlsa: SecureAnswer,
  base: string,
): DaneHost {
  const lookups = [address.a, address.aaaa];
  if (lookups.every(failed)) return { kind: 'failure', detail: `address lookup ${address.a.rcode}` };
  const addresses = lookups
    .filter((a) => !failed(a))
    .flatMap((a) => a.answers.flatMap((x) => (x.type === 'A' || x.type === 'AAAA' ? [x.data] : [])));
  if (!lookups.every((a) => failed(a) || a.authenticated))
    return { kind: 'none', reason: 'address records not validated' };
  if (failed(tlsa)) return { kind: 'failure', detail: `TLSA lookup ${tlsa.rcode}` };
  if (!tlsa.authenticated) return { kind: 'none', reason: 'TLSA answer not validated' };
  const records: TlsaRecord[] = tlsa.answers.flatMap((x) =>
    x.type === 'TLSA'
      ? [
          {
            usage: x.data.usage,
            selector: x.data.selector,
            matchingType: x.data.matchingType,
            data: x.data.certificate,
          },
        ]
      : [],
  );
  if (records.length === 0) return { kind: 'none', reason: 'no TLSA records' };
  const usable = records.filter(USABLE);
  if (usable.length === 0) return { kind: 'encrypt', addresses };
  return { kind: 'dane', records: usable, addresses, base };
}

/** The TLSA records and the names a DANE-TA chain must show (RFC 7672 §3.2.2). */
export interface DaneExpectation {
  records: TlsaRecord[];
  /**
   * The TLSA base domain first (also sent as SNI, RFC 7672 §8.1), the MX host name when that is a
   * CNAME to it, and the next-hop domain when the MX RRset was validated.
   */
  names: string[];
}

export type DaneVerdict = { ok: true } | { ok: false; detail: string };

function selected(cert: X509Certificate, selector: number): Buffer {
  return selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
}

function matches(record: TlsaRecord, cert: X509Certificate): boolean {
  const data = selected(cert, record.selector);
  const digest =
    record.matchingType === 0
      ? data
      : createHash(record.matchingType === 1 ? 'sha256' : 'sha512')
          .update(data)
          .digest();
  return digest.equals(record.data);
}

/**
 * Whether `chain` (DER, the server's certificate first, as sent) is authenticated by the records:
 * DANE-EE matches the server's certificate, with no name or date checks (§3.1.1); DANE-TA matches
 * an issuer in the chain, every link below it must be signed by the next, and the server's
 * certificate must name one of the expected names and be within its dates (§3.1.2, §3.2.2).
 */
export function matchDane(expect: DaneExpectation, chain: readonly Buffer[], now: Date): DaneVerdict {
  let certs: X509Certificate[];
  try {
    certs = chain.map((der) => new X509Certificate(der));
  } catch {
    return { ok: false, detail: 'the server certificate does not parse' };
  }
  const leaf = certs[0];
  if (!leaf) return { ok: false, detail: 'no server certificate' };
  if (expect.records.some((r) => r.usage === 3 && matches(r, leaf))) return { ok: true };
  const ta = expect.records.filter((r) => r.usage === 2);
  const anchor = certs.findIndex((c, i) => i > 0 && ta.some((r) => matches(r, c)));
  if (anchor < 0) return { ok: false, detail: 'no certificate of the chain matches a TLSA record' };
  for (let i = 0; i < anchor; i++) {
    const [child, issuer] = [certs[i]!, certs[i + 1]!];
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey))
      return { ok: false, detail: `certificate ${i} is not signed by the next one in the chain` };
  }
  if (!expect.names.some((n) => leaf.checkHost(n, { subject: 'default' }) !== undefined))
    return { ok: false, detail: `the certificate names none of ${expect.names.join(', ')}` };
  if (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo))
    return { ok: false, detail: 'the certificate is outside its validity dates' };
  return { ok: true };
}
