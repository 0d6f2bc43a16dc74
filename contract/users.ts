// The relay's AUTH users file and its scrypt password hashes: the operator writes the file (from
// the pool's users Secret), the relay reads it and verifies AUTH against it, `mailfleet relay
// --hash-password` prints a line for it. One implementation, so the two programs cannot drift
// (they once did: the operator wrote 64-byte keys, the relay 32-byte ones).
// Format: `username:$scrypt$N=16384,r=8,p=1$<salt base64>$<key base64>` per line (# comments),
// or YAML `users: {username: hash}`. Parsing is pure; hashing/verifying use node:crypto.
// A hash is verified with the key length it carries (16 to 64 bytes), so files written with the
// operator's former 64-byte keys keep verifying; new hashes have 32-byte keys.
import {
  randomBytes,
  scrypt as scryptCb,
  scryptSync,
  timingSafeEqual,
  type ScryptOptions,
} from 'node:crypto';
import { parse } from 'yaml';

export type Users = Map<string, string>;

export function parseUsersFile(text: string): { ok: true; users: Users } | { ok: false; error: string } {
  const users: Users = new Map();
  const trimmed = text.trim();
  if (trimmed.startsWith('users:')) {
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    const map = (doc as { users?: unknown }).users;
    if (typeof map !== 'object' || map === null) return { ok: false, error: 'users: must be a mapping' };
    for (const [name, hash] of Object.entries(map)) {
      if (typeof hash !== 'string' || !parseHash(hash))
        return { ok: false, error: `users.${name}: not a scrypt hash` };
      users.set(name, hash);
    }
    return { ok: true, users };
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0 || !parseHash(hash))
      return { ok: false, error: `line ${i + 1}: expected username:$scrypt$...` };
    users.set(name, hash);
  }
  return { ok: true, users };
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/**
 * Bounds on the scrypt cost parameters a users file may ask for. One AUTH attempt costs
 * 128·N·r bytes and N·r·p work: unbounded, a hostile or mistaken users file could make every
 * attempt take seconds and hundreds of MiB (a denial of service through AUTH). The upper bounds
 * still allow 8x the default N=16384,r=8,p=1.
 */
const SCRYPT_BOUNDS = { minN: 1024, maxN: 2 ** 20, maxR: 32, maxP: 16, maxKeyBytes: 64 } as const;

export function parseHash(hash: string): ParsedHash | undefined {
  const m = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!m) return undefined;
  const N = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  const b = SCRYPT_BOUNDS;
  // N must be a power of two (scrypt's requirement) within bounds.
  if (!Number.isSafeInteger(N) || N < b.minN || N > b.maxN || (N & (N - 1)) !== 0) return undefined;
  if (!Number.isInteger(r) || r < 1 || r > b.maxR) return undefined;
  if (!Number.isInteger(p) || p < 1 || p > b.maxP) return undefined;
  const key = Buffer.from(m[5]!, 'base64');
  if (key.length < 16 || key.length > b.maxKeyBytes) return undefined;
  return { N, r, p, salt: Buffer.from(m[4]!, 'base64'), key };
}

function scrypt(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, length, { ...options, maxmem: SCRYPT_MAXMEM }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** What new hashes use: scrypt's interactive-login parameters (16 MiB, ~50 ms), a 16-byte salt
 * and a 32-byte key (256 bits: more adds nothing against guessing the password). */
export const HASH_PARAMS = { N: 16384, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const;
// node's default scrypt maxmem (32 MiB) is exactly what the default cost needs; 256 MiB leaves room
// for the stronger parameters a users file may carry (SCRYPT_BOUNDS).
const SCRYPT_MAXMEM = 256 * 1024 * 1024;
const COST = { N: HASH_PARAMS.N, r: HASH_PARAMS.r, p: HASH_PARAMS.p };

function formatHash(salt: Buffer, key: Buffer): string {
  return `$scrypt$N=${COST.N},r=${COST.r},p=${COST.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const DUMMY_SALT = Buffer.alloc(HASH_PARAMS.saltBytes);

/** A users-file hash of `password`, off the event loop (libuv's thread pool). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(HASH_PARAMS.saltBytes);
  return formatHash(salt, await scrypt(password, salt, HASH_PARAMS.keyBytes, COST));
}

/** The same hash, computed on the calling thread (~50 ms): for callers that must stay synchronous. */
export function hashPasswordSync(password: string): string {
  const salt = randomBytes(HASH_PARAMS.saltBytes);
  return formatHash(
    salt,
    scryptSync(password, salt, HASH_PARAMS.keyBytes, { ...COST, maxmem: SCRYPT_MAXMEM }),
  );
}

export async function verifyPassword(users: Users, username: string, password: string): Promise<boolean> {
  const parsed = parseHash(users.get(username) ?? '');
  if (!parsed) {
    // Same work for an unknown user, so the reply time does not tell which usernames exist.
    await scrypt(password, DUMMY_SALT, HASH_PARAMS.keyBytes, COST);
    return false;
  }
  const key = await scrypt(password, parsed.salt, parsed.key.length, {
    N: parsed.N,
    r: parsed.r,
    p: parsed.p,
  });
  return timingSafeEqual(key, parsed.key);
}
