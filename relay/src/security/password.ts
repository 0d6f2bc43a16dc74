// Password hashes for SMTP AUTH users, stored as
//   $scrypt$N=16384,r=8,p=1$<salt base64>$<key base64>
// The operator writes these into the relay's users file; the relay never sees plain passwords.
// scrypt (RFC 7914) is memory-hard, so a leaked users file resists offline guessing.
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { parse as parseYaml } from 'yaml';

const KEY_LENGTH = 32;
const DEFAULTS = { N: 16384, r: 8, p: 1 };

function scrypt(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password, salt, KEY_LENGTH, { ...options, maxmem: 64 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string, salt: Buffer = randomBytes(16)): Promise<string> {
  const key = await scrypt(password, salt, DEFAULTS);
  return `$scrypt$N=${DEFAULTS.N},r=${DEFAULTS.r},p=${DEFAULTS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

type ParsedHash = { N: number; r: number; p: number; salt: Buffer; key: Buffer };

export function parseHash(hash: string): ParsedHash | undefined {
  const match = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!match) return undefined;
  const [, N, r, p, salt, key] = match;
  const params = { N: Number(N), r: Number(r), p: Number(p) };
  // Bounds keep a hostile users file from making one AUTH attempt cost seconds of CPU or GBs.
  if (params.N < 1024 || params.N > 1 << 20 || (params.N & (params.N - 1)) !== 0) return undefined;
  if (params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16) return undefined;
  return { ...params, salt: Buffer.from(salt!, 'base64'), key: Buffer.from(key!, 'base64') };
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed || parsed.key.length !== KEY_LENGTH) return false;
  const key = await scrypt(password, parsed.salt, { N: parsed.N, r: parsed.r, p: parsed.p });
  return timingSafeEqual(key, parsed.key);
}

export type UsersFileResult = { ok: true; users: Map<string, string> } | { ok: false; error: string };

/**
 * Parses a users file: `username:hash` lines (blank lines and # comments ignored), or YAML with a
 * `users:` map of username to hash.
 */
export function parseUsersFile(text: string): UsersFileResult {
  const users = new Map<string, string>();
  if (/^\s*users\s*:/m.test(text)) {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      return { ok: false, error: `not valid YAML: ${(err as Error).message}` };
    }
    const map = (doc as { users?: unknown }).users;
    if (!map || typeof map !== 'object' || Array.isArray(map))
      return { ok: false, error: 'users: must be a map' };
    for (const [name, hash] of Object.entries(map)) {
      if (typeof hash !== 'string' || !parseHash(hash))
        return { ok: false, error: `users.${name}: not a $scrypt$ hash` };
      users.set(name, hash);
    }
    return { ok: true, users };
  }
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0 || !parseHash(hash))
      return { ok: false, error: `line ${index + 1}: expected username:$scrypt$... hash` };
    users.set(name, hash);
  }
  return { ok: true, users };
}
