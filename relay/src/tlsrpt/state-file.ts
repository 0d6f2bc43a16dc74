// The relay's own TLS-RPT state on the spool volume (`<spool.dir>/tlsrpt.json`): the counts not
// yet reported and the reports whose POST is to be retried, so a restart loses neither. A codec
// (pure) and the file, written whole: temporary file, fsync, rename.
import { open, readFile, rename } from 'node:fs/promises';
import type { TallySnapshot } from './tally.ts';
import type { PendingPost } from './retry.ts';
import type { PendingLookup } from './lookup.ts';

export interface TlsReportState {
  tally: TallySnapshot;
  retries: PendingPost[];
  /** Reports whose `_smtp._tls` lookup failed, with their counts (absent in older files). */
  lookups: PendingLookup[];
}

const VERSION = 1;

export function encodeState(state: TlsReportState): string {
  return JSON.stringify({ version: VERSION, ...state });
}

/** undefined for a file of another version or shape (it is then started afresh, and said so). */
export function decodeState(text: string): TlsReportState | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = raw as { version?: unknown; tally?: TallySnapshot; retries?: unknown; lookups?: unknown };
  if (o?.version !== VERSION || typeof o.tally !== 'object' || !Array.isArray(o.retries)) return undefined;
  const counts = (v: unknown) =>
    typeof v === 'object' && v !== null && Object.values(v).every((n) => Number.isInteger(n) && n > 0);
  const { days, reportedUntil } = o.tally ?? {};
  if (typeof days !== 'object' || days === null || !Object.values(days).every(counts)) return undefined;
  if (typeof reportedUntil !== 'object' || reportedUntil === null) return undefined;
  const retries = o.retries.filter(
    (p: Partial<PendingPost>) =>
      typeof p?.url === 'string' &&
      typeof p.body === 'string' &&
      typeof p.domain === 'string' &&
      typeof p.day === 'string' &&
      [p.attempts, p.firstAt, p.nextAt].every(Number.isFinite),
  ) as PendingPost[];
  const lookups = (Array.isArray(o.lookups) ? o.lookups : []).filter(
    (p: Partial<PendingLookup>) =>
      typeof p?.domain === 'string' &&
      typeof p.day === 'string' &&
      Array.isArray(p.counts) &&
      p.counts.every((c) => Array.isArray(c) && typeof c[0] === 'string' && Number.isInteger(c[1])) &&
      [p.start, p.end, p.attempts, p.firstAt, p.nextAt].every(Number.isFinite),
  ) as PendingLookup[];
  return { tally: { days, reportedUntil }, retries, lookups };
}

export interface StateStore {
  /** undefined: no file yet; rejects for a file that cannot be read or decoded. */
  load(): Promise<TlsReportState | undefined>;
  save(state: TlsReportState): Promise<void>;
}

export function stateFile(path: string): StateStore {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      const state = decodeState(text);
      if (!state) throw new Error(`${path}: not a TLS-RPT state file of version ${VERSION}`);
      return state;
    },
    async save(state) {
      const temporary = `${path}.tmp`;
      const file = await open(temporary, 'w', 0o600);
      try {
        await file.writeFile(encodeState(state));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, path);
    },
  };
}
