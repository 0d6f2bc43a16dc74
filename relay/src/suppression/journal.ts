// The suppression list on disk: an append-only file of changes (one JSON line each, codec in
// entry.ts) on the spool volume, so the list survives a restart. Appends are group-committed: all
// changes that arrive while one write+fsync runs go out in the next one, and each caller's promise
// resolves only after its line is on disk. A compaction rewrites the live entries to a new file
// (write, fsync, rename, fsync the directory), so a crash leaves the old file or the new one.
// The file is opened for each group commit and closed after it, never held open: changes are rare
// (bounces, complaints, operators), and a descriptor held open for writing keeps the spool volume
// from being remounted read-only under the relay (the reliability suite's read-only spool case).
import { createReadStream } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { decodeChange, encodeChange, type SuppressionChange, type SuppressionEntry } from './entry.ts';

export interface LoadResult {
  /** Lines read, damaged ones included. */
  lines: number;
  /** Lines that did not decode (a write torn by a crash): skipped. */
  damaged: number;
}

type Pending = { text: string; done: () => void; failed: (err: unknown) => void };

export class SuppressionJournal {
  readonly path: string;
  /** Lines waiting for the next write+fsync. */
  private pending: Pending[] = [];
  /** The write+fsync (or rewrite) running now; later work chains on it. */
  private running: Promise<void> = Promise.resolve();
  private flushing = false;

  constructor(path: string) {
    this.path = path;
  }

  /** Reads every change in the file, in order, into `apply`. A missing file is an empty list. */
  async load(apply: (change: SuppressionChange) => void): Promise<LoadResult> {
    await mkdir(dirname(this.path), { recursive: true });
    const result: LoadResult = { lines: 0, damaged: 0 };
    const stream = createReadStream(this.path, { encoding: 'utf8' });
    const missing = new Promise<boolean>((resolve) => {
      stream.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ENOENT'));
      stream.once('open', () => resolve(false));
    });
    if (await missing) return result;
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (line === '') continue;
      result.lines++;
      const change = decodeChange(line);
      if (change) apply(change);
      else result.damaged++;
    }
    return result;
  }

  /** Creates the file if it is missing: a spool volume the relay cannot write is found at start. */
  async open(): Promise<void> {
    await (await open(this.path, 'a')).close();
  }

  /** Appends the changes; resolves once they are fsynced. */
  append(changes: readonly SuppressionChange[]): Promise<void> {
    if (changes.length === 0) return Promise.resolve();
    const text = changes.map((c) => `${encodeChange(c)}\n`).join('');
    return new Promise<void>((done, failed) => {
      this.pending.push({ text, done, failed });
      if (!this.flushing) this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    this.flushing = true;
    this.running = this.running.then(() => this.flush());
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      const handle = await open(this.path, 'a');
      try {
        await handle.write(batch.map((p) => p.text).join(''));
        await handle.datasync();
      } finally {
        await handle.close();
      }
      for (const p of batch) p.done();
    } catch (err) {
      for (const p of batch) p.failed(err);
    }
    if (this.pending.length > 0) this.scheduleFlush();
    else this.flushing = false;
  }

  /** Replaces the file with one add line per entry (compaction). */
  rewrite(entries: Iterable<SuppressionEntry>): Promise<void> {
    const work = this.running.then(async () => {
      const tmp = `${this.path}.tmp`;
      const out = await open(tmp, 'w');
      try {
        let chunk: string[] = [];
        for (const entry of entries) {
          chunk.push(`${encodeChange({ op: 'add', entry })}\n`);
          if (chunk.length === 4096) {
            await out.write(chunk.join(''));
            chunk = [];
          }
        }
        await out.write(chunk.join(''));
        await out.sync();
      } finally {
        await out.close();
      }
      await rename(tmp, this.path);
      const dir = await open(dirname(this.path), 'r');
      await dir.sync().finally(() => dir.close());
    });
    this.running = work.catch(() => undefined);
    return work;
  }

  /** Waits for the writes already asked for. */
  async close(): Promise<void> {
    await this.running;
  }
}
