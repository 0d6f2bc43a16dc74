// MTA-STS (RFC 8461) as pure functions: the `_mta-sts` TXT record, the policy file, which MX hosts a
// policy allows, and when a cached policy must be fetched again.

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** MX patterns: a host name, or `*.` + a domain matching exactly one more label (§4.1). */
  mx: string[];
  /** Seconds the policy may be cached (§3.2: at most 31557600). */
  maxAge: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const ID = /^[a-zA-Z0-9]{1,32}$/;

/**
 * The policy id from the TXT records of `_mta-sts.<domain>` (§3.1): each record's strings joined;
 * records not starting with `v=STSv1;` are ignored; anything but exactly one valid record means
 * the domain has no policy (undefined).
 */
export function parseStsRecord(records: readonly (readonly string[])[]): string | undefined {
  const sts = records.map((r) => r.join('')).filter((r) => /^v=STSv1;/.test(r));
  if (sts.length !== 1) return undefined;
  const fields = new Map<string, string>();
  for (const part of sts[0]!.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key) fields.set(key.trim(), rest.join('=').trim());
  }
  const id = fields.get('id');
  return id && ID.test(id) ? id : undefined;
}

/** The policy file (§3.2): `key: value` lines, CRLF or LF; unknown keys ignored. */
export function parseStsPolicy(text: string): Parsed<StsPolicy> {
  let version = '';
  let mode = '';
  let maxAge = '';
  const mx: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'version') version = value;
    else if (key === 'mode') mode = value;
    else if (key === 'max_age') maxAge = value;
    else if (key === 'mx') mx.push(value.toLowerCase().replace(/\.$/, ''));
  }
  if (version !== 'STSv1') return { ok: false, error: 'version is not STSv1' };
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none')
    return { ok: false, error: `mode ${JSON.stringify(mode)} is not enforce, testing or none` };
  if (!/^\d{1,10}$/.test(maxAge) || Number(maxAge) > 31557600)
    return { ok: false, error: 'max_age is not a number of seconds up to 31557600' };
  if (mode !== 'none' && mx.length === 0) return { ok: false, error: 'no mx pattern' };
  return { ok: true, value: { mode, mx, maxAge: Number(maxAge) } };
}

/** §4.1: a `*.` pattern stands for exactly one leftmost label. */
export function mxMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (!pattern.startsWith('*.')) return pattern === h;
  const dot = h.indexOf('.');
  return dot > 0 && h.slice(dot + 1) === pattern.slice(2);
}

export interface CachedPolicy {
  id: string;
  policy: StsPolicy;
  /** When the policy stops being usable (fetch time + max_age), ms since the epoch. */
  expiresAt: number;
}

/**
 * Whether to fetch the policy (§5.1): when the TXT id differs from the cached one, or nothing
 * usable is cached; a missing TXT record keeps an unexpired cached policy in force.
 */
export function needsFetch(
  cached: CachedPolicy | undefined,
  txtId: string | undefined,
  now: number,
): boolean {
  if (txtId === undefined) return false;
  return !cached || cached.expiresAt <= now || cached.id !== txtId;
}

/** The cached policy still in force at `now`, if any. */
export function usable(cached: CachedPolicy | undefined, now: number): StsPolicy | undefined {
  return cached && cached.expiresAt > now ? cached.policy : undefined;
}

/** What a domain's MTA-STS policy asks of this delivery. */
export type StsPlan =
  /** No policy in force: deliver as the domain had not implemented MTA-STS. */
  | { mode: 'none' }
  /** Only `allowed` MX hosts, each with a verified certificate; none allowed: defer. */
  | { mode: 'enforce'; allowed: string[] }
  /** Deliver as without a policy; failures (`mismatched` hosts, certificates) are only reported. */
  | { mode: 'testing'; mismatched: string[] };

export function stsPlan(policy: StsPolicy | undefined, mxHosts: readonly string[]): StsPlan {
  if (!policy || policy.mode === 'none') return { mode: 'none' };
  const matches = (host: string) => policy.mx.some((p) => mxMatches(p, host));
  if (policy.mode === 'enforce') return { mode: 'enforce', allowed: mxHosts.filter(matches) };
  return { mode: 'testing', mismatched: mxHosts.filter((h) => !matches(h)) };
}
