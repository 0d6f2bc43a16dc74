// The journal: the durable copy of every recent message, in group-committed batch files.
//
//   <dir>/journal/<batch>.jnl    batch.ts frames around record.ts records, fsynced with journal/
//   <dir>/journal/<batch>.done   ids of the batch's finished messages (batch.ts done log)
//
// A batch is deleted when its last message is finished or retired (store.ts decides which).
import { join } from 'node:path';
import type { SpoolFs } from './fs-ops.ts';
import { crc32 } from 'node:zlib';
import { GroupSync } from './group-sync.ts';
import { crc32Combine } from './crc.ts';
import { STREAMED_RECORD_HEAD } from './record.ts';
import { SpoolStream } from './stream.ts';
import {
  decodeBatch,
  decodeDoneLog,
  encodeBatchParts,
  encodeDoneLine,
  encodeStreamedTrailer,
  STREAMED_BATCH_HEAD,
  type DamagedSpan,
  type DecodedFrame,
} from './batch.ts';

/**
 * Done logs held open at once. Under load a batch lives a few milliseconds and a handful are open;
 * batches holding deferred mail for a minute fall back to open, append, close per mark.
 */
const MAX_OPEN_DONE_LOGS = 64;

/** One batch file. */
export interface Batch {
  id: string;
  size: number;
  /** Epoch ms it was committed (0 when found at start: retired at the first chance). */
  committedAt: number;
  /** Messages of this batch still queued; the file is deleted when the last one goes. */
  live: Set<string>;
  /** Whether `<batch>.done` exists. */
  hasDoneLog: boolean;
  /** `<batch>.done` held open for appends (at most MAX_OPEN_DONE_LOGS batches at once). */
  doneFd?: number;
  /** Set once the file is deleted (or being deleted). */
  deleted: boolean;
}

/** Where one message's record is. */
export interface JournalRecord {
  batch: Batch;
  offset: number;
  length: number;
}

/** A batch file found at start, decoded. */
export type LoadedBatch =
  | { ok: true; size: number; frames: DecodedFrame[]; damaged: DamagedSpan[]; done: Set<string> }
  | { ok: false; reason: string };

export class Journal {
  private readonly fs: SpoolFs;
  private readonly dir: string;
  private readonly tmpDir: string;
  private readonly quarantineDir: string;
  private readonly newId: () => string;
  /** Shares journal-directory fsyncs between commits that overlap. */
  private readonly dirSync: GroupSync;
  /** journal/ held open for its fsyncs (opened by open()). */
  private dirFd: number | undefined;
  /** Batches whose done log is held open (Batch.doneFd). */
  private openDoneLogs = 0;
  /** Batches still holding messages and not exempt from retirement, oldest first. */
  private readonly batches = new Map<string, Batch>();
  /** Bytes of the batch files still on disk. */
  private totalBytes = 0;

  constructor(options: {
    fs: SpoolFs;
    dir: string;
    tmpDir: string;
    quarantineDir: string;
    newId: () => string;
  }) {
    this.fs = options.fs;
    this.dir = options.dir;
    this.tmpDir = options.tmpDir;
    this.quarantineDir = options.quarantineDir;
    this.newId = options.newId;
    this.dirSync = new GroupSync(() =>
      this.dirFd === undefined ? this.fs.syncDir(this.dir) : this.fs.syncDirFd(this.dirFd),
    );
  }

  /** Opens journal/ (which must exist) for the fsyncs of every commit. */
  open(): void {
    this.dirFd ??= this.fs.openDir(this.dir);
  }

  /**
   * Closes the descriptors held open; later fsyncs open journal/ each time. journal/ is closed
   * only after the fsyncs already started on it: a descriptor closed under a queued fsync could be
   * reused by another file, and the fsync would then sync the wrong one.
   */
  async close(): Promise<void> {
    for (const batch of this.batches.values()) this.closeDoneLog(batch);
    const fd = this.dirFd;
    this.dirFd = undefined;
    if (fd === undefined) return;
    await this.dirSync.settled();
    this.fs.closeFile(fd);
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * One group commit: the records in one new batch, written, renamed into journal/ and fsynced
   * with its directory; returns where each record is. Throws with nothing left in journal/ when
   * any step fails.
   */
  async commit(messages: { id: string; record: Buffer }[]): Promise<JournalRecord[]> {
    const id = this.newId();
    const { parts, size, spans } = encodeBatchParts(messages.map((m) => m.record));
    const tmp = join(this.tmpDir, id);
    let fd: number;
    try {
      fd = await this.fs.createFile(tmp, parts, size);
    } catch (err) {
      await this.fs.remove(tmp).catch(() => undefined);
      throw err;
    }
    await this.install(id, tmp, fd);
    const batch = this.track(id, size, Date.now(), false);
    return messages.map((m, i) => {
      batch.live.add(m.id);
      return { batch, offset: spans[i]!.offset, length: spans[i]!.length };
    });
  }

  /** Starts a streamed batch for message `id` in tmp/ (throws when the file cannot be created). */
  openStream(id: string): SpoolStream {
    const batchId = this.newId();
    return new SpoolStream({ fs: this.fs, id, batchId, tmpPath: join(this.tmpDir, batchId) });
  }

  /**
   * Commits a streamed batch: `tail` (the record's envelope, record.ts) and the trailer frame
   * written after the message, then fsync, rename and directory fsync as for any batch. Throws
   * with nothing left in journal/ or tmp/ when any step fails.
   */
  async commitStream(stream: SpoolStream, tail: Buffer): Promise<JournalRecord> {
    const bodyEnd = STREAMED_RECORD_HEAD.length + stream.bodyLength;
    const length = bodyEnd + tail.length;
    // The record's CRC-32 from the body's, counted as it arrived: the body is not read again.
    const bodyCrc = crc32Combine(crc32(STREAMED_RECORD_HEAD), stream.bodyCrc32, stream.bodyLength);
    const trailer = encodeStreamedTrailer(length, crc32Combine(bodyCrc, crc32(tail), tail.length));
    let fd: number;
    try {
      fd = await stream.finish([tail, trailer]);
    } catch (err) {
      await stream.abort();
      throw err;
    }
    stream.release();
    await this.install(stream.batchId, stream.tmpPath, fd);
    const size = STREAMED_BATCH_HEAD.length + length + trailer.length;
    const batch = this.track(stream.batchId, size, Date.now(), false);
    batch.live.add(stream.id);
    return { batch, offset: STREAMED_BATCH_HEAD.length, length };
  }

  /**
   * Renames a written batch from tmp/ into journal/ and makes it durable; closes `fd`. Throws with
   * the file removed when any step fails.
   */
  private async install(id: string, tmp: string, fd: number): Promise<void> {
    const path = this.batchPath(id);
    let renamed = false;
    try {
      this.fs.renameSync(tmp, path);
      renamed = true;
      // File fsync and the shared directory fsync run together: the 250s wait for both. A crash
      // between them can leave a renamed batch whose data is not on disk; its frames fail their
      // checksums and recovery quarantines them - none of them was acknowledged.
      const [data, dir] = await Promise.allSettled([this.fs.syncFile(fd), this.dirSync.request()]);
      if (data.status === 'rejected') throw data.reason as Error;
      if (dir.status === 'rejected') throw dir.reason as Error;
    } catch (err) {
      await this.fs.remove(renamed ? path : tmp).catch(() => undefined);
      throw err;
    } finally {
      this.fs.closeFile(fd);
    }
  }

  read(at: JournalRecord): Promise<Buffer> {
    return this.fs.readRange(this.pathOf(at), at.offset, at.length);
  }

  /** The file holding a record (to read it in chunks; its offset and length are in `at`). */
  pathOf(at: JournalRecord): string {
    return this.batchPath(at.batch.id);
  }

  /** The batch committed longest ago that still holds messages. */
  oldest(): Batch | undefined {
    return this.batches.values().next().value;
  }

  /**
   * Marks a message of a batch finished. Not fsynced, like the unlink of a finished message: it
   * must survive kill -9, and a power loss can only bring the message back (a duplicate).
   */
  markDone(batch: Batch, id: string): void {
    batch.hasDoneLog = true;
    try {
      if (batch.doneFd === undefined && this.openDoneLogs < MAX_OPEN_DONE_LOGS && !batch.deleted) {
        batch.doneFd = this.fs.openAppend(this.donePath(batch.id));
        this.openDoneLogs++;
      }
      if (batch.doneFd !== undefined) this.fs.appendFd(batch.doneFd, encodeDoneLine(id));
      else this.fs.appendSync(this.donePath(batch.id), encodeDoneLine(id));
    } catch {
      // Not recorded: a restart delivers the message again (a duplicate, never a loss).
    }
  }

  /** Drops a message from its batch; the last one out deletes the batch. */
  async release(batch: Batch, id: string): Promise<void> {
    batch.live.delete(id);
    if (batch.live.size === 0) await this.delete(batch);
  }

  /** Keeps a batch on disk for the messages it still holds, but never offers it for retirement. */
  exempt(batch: Batch): void {
    this.batches.delete(batch.id);
    this.closeDoneLog(batch);
  }

  async delete(batch: Batch): Promise<void> {
    if (batch.deleted) return;
    batch.deleted = true;
    this.batches.delete(batch.id);
    this.closeDoneLog(batch);
    this.totalBytes -= batch.size;
    await this.fs.remove(this.batchPath(batch.id));
    if (batch.hasDoneLog) await this.fs.remove(this.donePath(batch.id));
  }

  /** Ids of the batch files in journal/ (at start). */
  async list(): Promise<{ batches: string[]; doneLogs: string[] }> {
    const names = await this.fs.readdir(this.dir);
    const base = (suffix: string) =>
      names.filter((n) => n.endsWith(suffix)).map((n) => n.slice(0, -suffix.length));
    return { batches: base('.jnl'), doneLogs: base('.done') };
  }

  /** Reads a batch found at start; an unreadable one is moved to quarantine. */
  async load(id: string): Promise<LoadedBatch> {
    let file: Buffer;
    try {
      file = await this.fs.readFile(this.batchPath(id));
    } catch (err) {
      await this.quarantine(id);
      return { ok: false, reason: `unreadable: ${(err as Error).message}` };
    }
    let doneText = '';
    try {
      doneText = (await this.fs.readFile(this.donePath(id))).toString('utf8');
    } catch {
      // no done log: nothing of the batch was finished
    }
    return { ok: true, size: file.length, ...decodeBatch(file), done: decodeDoneLog(doneText) };
  }

  /** Serves the given records of a batch found at start. */
  adopt(
    id: string,
    size: number,
    hasDoneLog: boolean,
    records: { id: string; offset: number; length: number }[],
  ) {
    const batch = this.track(id, size, 0, hasDoneLog);
    return records.map((r): JournalRecord => {
      batch.live.add(r.id);
      return { batch, offset: r.offset, length: r.length };
    });
  }

  /** Deletes a batch found at start whose messages are all finished. */
  async discard(id: string): Promise<void> {
    await this.fs.remove(this.batchPath(id));
    await this.fs.remove(this.donePath(id));
  }

  /** Moves a batch found at start to quarantine whole (kept for a human) with its done log gone. */
  async quarantine(id: string): Promise<void> {
    await this.fs.rename(this.batchPath(id), join(this.quarantineDir, `${id}.jnl`)).catch(() => undefined);
    await this.fs.remove(this.donePath(id));
  }

  /** Done logs whose batch is gone: left by a crash while a batch was being deleted. */
  async removeOrphanDoneLogs(ids: string[]): Promise<void> {
    for (const id of ids) if (!this.batches.has(id)) await this.fs.remove(this.donePath(id));
  }

  private closeDoneLog(batch: Batch): void {
    if (batch.doneFd === undefined) return;
    const fd = batch.doneFd;
    batch.doneFd = undefined;
    this.openDoneLogs--;
    try {
      this.fs.closeFile(fd);
    } catch {
      // Nothing buffered in the process: every mark was written when it was made.
    }
  }

  private track(id: string, size: number, committedAt: number, hasDoneLog: boolean): Batch {
    const batch: Batch = { id, size, committedAt, live: new Set(), hasDoneLog, deleted: false };
    this.batches.set(id, batch);
    this.totalBytes += size;
    return batch;
  }

  private batchPath(id: string): string {
    return join(this.dir, `${id}.jnl`);
  }

  private donePath(id: string): string {
    return join(this.dir, `${id}.done`);
  }
}
