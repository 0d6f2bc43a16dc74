// Where MTA-STS policies are kept beyond a relay's memory, each until its max_age runs out: the
// pool's shared store (shared-state/sts-policies.ts: a policy one relay fetched is in force in
// every relay, even while the policy host does not answer), or without one a file on the spool
// volume (a restarted relay keeps enforcing what it fetched before). The codec is pure.
import { open, readFile, rename } from 'node:fs/promises';
import type { Logger } from '../../../../contract/log.ts';
import type { CachedPolicy } from './policy.ts';

export interface StsPolicyStore {
  /** The stored policy of a domain; rejects when the store does not answer. */
  get(domain: string): Promise<CachedPolicy | undefined>;
  put(domain: string, cached: CachedPolicy): Promise<void>;
}

export function encodeCachedPolicy(cached: CachedPolicy): string {
  return JSON.stringify(cached);
}

/** undefined for anything but a cached policy (a store written by another version, say). */
export function decodeCachedPolicy(value: unknown): CachedPolicy | undefined {
  let o: Partial<CachedPolicy>;
  try {
    o = (typeof value === 'string' ? JSON.parse(value) : value) as Partial<CachedPolicy>;
  } catch {
    return undefined;
  }
  const p = o?.policy;
  const ok =
    typeof o?.id === 'string' &&
    Number.isFinite(o.expiresAt) &&
    (p?.mode === 'enforce' || p?.mode === 'testing' || p?.mode === 'none') &&
    Array.isArray(p.mx) &&
    p.mx.every((m) => typeof m === 'string') &&
    Number.isInteger(p.maxAge);
  return ok
    ? { id: o.id!, expiresAt: o.expiresAt!, policy: { mode: p.mode, mx: [...p.mx], maxAge: p.maxAge } }
    : undefined;
}

/** The policies of one relay in `<spool.dir>/mta-sts.json`, rewritten whole at each new policy. */
export class StsPolicyFile implements StsPolicyStore {
  private readonly path: string;
  private readonly now: () => number;
  private readonly policies = new Map<string, CachedPolicy>();
  /** The write in progress: writes never overlap (they share the temporary file). */
  private writing: Promise<void> = Promise.resolve();

  constructor(path: string, now: () => number = Date.now) {
    this.path = path;
    this.now = now;
  }

  /** Reads the file; a missing one is an empty store, an unreadable entry is skipped. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const entries = JSON.parse(text) as Record<string, unknown>;
    for (const [domain, value] of Object.entries(entries)) {
      const cached = decodeCachedPolicy(value);
      if (cached && cached.expiresAt > this.now()) this.policies.set(domain, cached);
    }
  }

  async get(domain: string): Promise<CachedPolicy | undefined> {
    return this.policies.get(domain);
  }

  put(domain: string, cached: CachedPolicy): Promise<void> {
    this.policies.set(domain, cached);
    const now = this.now();
    for (const [d, c] of this.policies) if (c.expiresAt <= now) this.policies.delete(d);
    const text = JSON.stringify(Object.fromEntries(this.policies));
    this.writing = this.writing.then(() => writeWhole(this.path, text));
    return this.writing;
  }
}

async function writeWhole(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

/** The relay's policy file, read; one that cannot be read is logged and started afresh. */
export async function openStsPolicyFile(path: string, log: Logger): Promise<StsPolicyFile> {
  const file = new StsPolicyFile(path);
  await file
    .load()
    .catch((err: unknown) =>
      log('error', 'MTA-STS policy file not readable, starting without it', { path, err: String(err) }),
    );
  return file;
}
