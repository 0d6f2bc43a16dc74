// One message written to a journal batch of its own as its DATA arrives (batch.ts streamed batch
// around a record.ts version 2 record), so a big message is never held whole in memory: each
// chunk is counted into the body's length and CRC-32 and queued for the file, and only the chunks
// the disk has not taken yet are held. The file stays in tmp/ until the journal commits it
// (Journal.commitStream: trailer, fsync, rename, directory fsync), so a stream cut short by a
// refusal, a lost connection or a kill never reaches journal/.
import { crc32 } from 'node:zlib';
import type { SpoolFs } from './fs-ops.ts';
import { STREAMED_BATCH_HEAD } from './batch.ts';
import { STREAMED_RECORD_HEAD } from './record.ts';

/** Bytes written before the message: the batch's head and the record's. */
const HEAD = Buffer.concat([STREAMED_BATCH_HEAD, STREAMED_RECORD_HEAD]);

export class SpoolStream {
  /** The message's queue id, chosen when the stream opens (its Received header names it). */
  readonly id: string;
  /** The batch file's id: tmp/<batchId> until committed, then journal/<batchId>.jnl. */
  readonly batchId: string;
  readonly tmpPath: string;
  private readonly fs: SpoolFs;
  /** The open file; undefined once closed. */
  private fd: number | undefined;
  /** Bytes of the message so far and their CRC-32 (the record's envelope carries both). */
  bodyLength = 0;
  bodyCrc32 = 0;
  /** Chunks handed in and not yet given to a write. */
  private queue: Buffer[] = [];
  /** Bytes in `queue` plus those of the write in progress: what memory holds for the disk. */
  private pendingBytes = 0;
  /** The write in progress, if any. */
  private writing: Promise<void> | undefined;
  /** The first write failure: the commit fails with it. */
  private failure: Error | undefined;
  /** Called once nothing is pending (backpressure on the DATA stream). */
  private drainWaiters: (() => void)[] = [];
  /** No more chunks: finished or aborted. */
  private ended = false;

  /** Creates tmp/<batchId>; throws when the file cannot be created. */
  constructor(options: { fs: SpoolFs; id: string; batchId: string; tmpPath: string }) {
    this.fs = options.fs;
    this.id = options.id;
    this.batchId = options.batchId;
    this.tmpPath = options.tmpPath;
    this.fd = this.fs.createEmpty(this.tmpPath);
    this.enqueue(HEAD);
  }

  /** Bytes held in memory until the disk takes them. */
  get pending(): number {
    return this.pendingBytes;
  }

  /** Appends message bytes (not copied: the caller must not change the chunk). */
  push(chunk: Buffer): void {
    if (this.ended || chunk.length === 0) return;
    this.bodyLength += chunk.length;
    this.bodyCrc32 = crc32(chunk, this.bodyCrc32);
    this.enqueue(chunk);
  }

  /** Calls `cb` once nothing is pending (at once if nothing is). */
  drained(cb: () => void): void {
    if (this.pendingBytes === 0 || this.failure) cb();
    else this.drainWaiters.push(cb);
  }

  /**
   * Writes the parts after the message (record tail, trailer) and resolves to the descriptor once
   * every byte is written (not fsynced); rejects with the first write failure.
   */
  async finish(parts: readonly Buffer[]): Promise<number> {
    for (const part of parts) this.enqueue(part);
    this.ended = true;
    while (this.writing) await this.writing;
    if (this.failure) throw this.failure;
    if (this.fd === undefined) throw new Error('spool stream closed');
    return this.fd;
  }

  /** Gives the descriptor over (the journal closes it): the stream no longer owns it. */
  release(): void {
    this.fd = undefined;
  }

  /**
   * Drops the message: the file is closed (after a write in progress, so its descriptor cannot
   * be reused under it) and removed from tmp/.
   */
  async abort(): Promise<void> {
    this.ended = true;
    this.queue = [];
    while (this.writing) await this.writing;
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) {
      try {
        this.fs.closeFile(fd);
      } catch {
        // nothing buffered in the process
      }
    }
    await this.fs.remove(this.tmpPath).catch(() => undefined);
    this.wake();
  }

  private enqueue(part: Buffer): void {
    if (this.failure) return; // the commit fails anyway: nothing more is held for it
    this.queue.push(part);
    this.pendingBytes += part.length;
    this.kick();
  }

  /** Starts a write of everything queued, unless one runs (the chunks wait for it and go together). */
  private kick(): void {
    if (this.writing || this.queue.length === 0 || this.fd === undefined) return;
    const parts = this.queue;
    this.queue = [];
    const size = parts.reduce((sum, p) => sum + p.length, 0);
    this.writing = this.fs.writeParts(this.fd, parts, size).then(
      () => {
        this.pendingBytes -= size;
        this.writing = undefined;
        if (this.queue.length === 0) this.wake();
        this.kick();
      },
      (err: unknown) => {
        this.failure = err as Error;
        this.queue = [];
        this.pendingBytes = 0;
        this.writing = undefined;
        this.wake();
      },
    );
  }

  private wake(): void {
    for (const cb of this.drainWaiters.splice(0)) cb();
  }
}
