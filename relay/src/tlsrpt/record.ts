// The TLS-RPT record (RFC 8460 §3): `_smtp._tls.<domain>` TXT "v=TLSRPTv1; rua=<uri>[,<uri>]".
// Pure.

/** Where a domain wants its reports: `mailto:` and `https:` URIs, in the order published. */
export interface TlsRptRecord {
  rua: string[];
}

/**
 * §3: records not starting with "v=TLSRPTv1;" are discarded; unless exactly one remains the
 * domain does not take reports. URIs of other schemes are ignored; none left: no reports.
 */
export function parseTlsRptRecord(txt: readonly (readonly string[])[]): TlsRptRecord | undefined {
  const records = txt.map((chunks) => chunks.join('')).filter((r) => /^v=TLSRPTv1\s*;/.test(r));
  if (records.length !== 1) return undefined;
  const fields = new Map<string, string>();
  for (const part of records[0]!.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const rua = (fields.get('rua') ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => /^mailto:[^@\s]+@[^@\s]+$/i.test(u) || /^https:\/\/\S+$/i.test(u));
  return rua.length > 0 ? { rua } : undefined;
}
