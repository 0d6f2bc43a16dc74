// The durable spool: the only code that writes queue files.
//
//   <dir>/tmp/<batch>            a batch being written; removed on start (never acknowledged)
//   <dir>/journal/<batch>.jnl    the messages of one group commit: batch.ts frames around record.ts
//                                records, fsynced with its directory before any of them gets 250
//   <dir>/journal/<batch>.done   messages of that batch that are finished
//   <dir>/queue/<id>.msg         the message (record.ts), written once its batch is durable and not
//                                fsynced: it survives kill -9, and after a power loss the journal
//                                rebuilds it
//   <dir>/queue/<id>.rcpt        recipient states of one message, appended after delivery attempts
//   <dir>/quarantine/            data that failed to decode, kept for a human, never delivered
//
// The journal is what makes a message durable, so N concurrent sessions share one write and one
// fsync. A batch is deleted when all its messages are finished; one still holding messages after
// RETIRE_AFTER_MS (deferred mail) is retired instead: the copies of its messages are fsynced and
// from then on each queue/<id>.msg stands alone, as every message did before the journal (such
// files from older relays are recovered the same way).
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { RelayError } from '../errors.ts';
import type { SpoolFs } from './fs-ops.ts';
import { GroupSync } from './group-sync.ts';
import { GroupCommit } from './group-commit.ts';
import { decodeBatch, decodeDoneLog, encodeBatch, encodeDoneLine, type DamagedSpan } from './batch.ts';
import {
  decodeMessage,
  decodeStateLog,
  encodeMessage,
  encodeStateLine,
  type Envelope,
  type RecipientState,
} from './record.ts';

const CACHE_BYTES = 64 * 1024 * 1024;
/** Bounds one commit, so a burst does not hold the first writer's 250 behind a huge write. */
const MAX_BATCH_MESSAGES = 256;
/** A batch still holding messages this long is retired (their copies fsynced), freeing its space. */
const RETIRE_AFTER_MS = 60_000;

export interface RecoveredMessage {
  envelope: Envelope;
  states: Map<number, RecipientState>;
}

export interface SpoolEvents {
  quarantined(id: string, reason: string): void;
}

/** One journal batch file. */
interface Batch {
  id: string;
  size: number;
  /** Epoch ms it was committed (0 when found at start: retired at the first chance). */
  committedAt: number;
  /** Messages of this batch still queued; the file is deleted when the last one finishes. */
  live: Set<string>;
  /** Whether `<batch>.done` exists. */
  hasDoneLog: boolean;
  /** Set once the file is deleted (or being deleted). */
  deleted: boolean;
}

/** A queued message: its journal record while its batch lasts, and the size of its copy. */
interface Queued {
  journal: { batch: Batch; offset: number; length: number } | undefined;
  /** Bytes of queue/<id>.msg; 0 when the copy could not be written (served from the journal). */
  copySize: number;
}

interface PendingRecord {
  id: string;
  record: Buffer;
}

export class Spool {
  readonly dir: string;
  private readonly fs: SpoolFs;
  private readonly events: SpoolEvents;
  private readonly queueDir: string;
  private readonly journalDir: string;
  private readonly tmpDir: string;
  private readonly quarantineDir: string;
  private readonly retireAfterMs: number;
  /** Shares journal-directory fsyncs between commits that overlap. */
  private readonly journalDirSync: GroupSync;
  /** Writes the records of concurrent sessions as one batch with one fsync. */
  private readonly commits: GroupCommit<PendingRecord>;
  /** Every queued message. */
  private readonly queued = new Map<string, Queued>();
  /** Journal batches still holding messages, oldest first. */
  private readonly batches = new Map<string, Batch>();
  /** True while a batch is being retired (one at a time, in the background). */
  private retiring = false;
  /** Damaged batches found by recover(). */
  private damagedBatches = 0;
  /** After a failed retirement, none is tried before this epoch ms. */
  private retireNotBefore = 0;
  /** Bytes of journal batches and message copies on disk. */
  private totalBytes = 0;
  /**
   * Bodies of recently written messages, so the first delivery attempt does not read back from
   * disk what was just written. Bounded by CACHE_BYTES; a miss just reads the file.
   */
  private readonly bodyCache = new Map<string, Buffer>();
  private cachedBytes = 0;
  /** Messages that have a .rcpt file (so remove() need not try to unlink one that never existed). */
  private readonly withStates = new Set<string>();
  /** Counter making ids unique within one process; the random part makes them unique across restarts. */
  private sequence = 0;
  private readonly instance = randomBytes(3).toString('hex');

  constructor(options: { dir: string; fs: SpoolFs; events: SpoolEvents; retireAfterMs?: number }) {
    this.dir = options.dir;
    this.fs = options.fs;
    this.events = options.events;
    this.retireAfterMs = options.retireAfterMs ?? RETIRE_AFTER_MS;
    this.queueDir = join(this.dir, 'queue');
    this.journalDir = join(this.dir, 'journal');
    this.tmpDir = join(this.dir, 'tmp');
    this.quarantineDir = join(this.dir, 'quarantine');
    this.journalDirSync = new GroupSync(() => this.fs.syncDir(this.journalDir));
    this.commits = new GroupCommit(
      async (items) => {
        await this.persist(items);
        this.retireOld(Date.now());
      },
      { maxItems: MAX_BATCH_MESSAGES },
    );
  }

  get bytes(): number {
    return this.totalBytes;
  }

  newId(now: number): string {
    this.sequence = (this.sequence + 1) % 1_679_616;
    return `${now.toString(36)}${this.sequence.toString(36).padStart(4, '0')}${this.instance}`.toUpperCase();
  }

  /** Creates the folders and forgets half-written files from a previous run. */
  async open(): Promise<void> {
    for (const d of [this.queueDir, this.journalDir, this.tmpDir, this.quarantineDir]) await this.fs.mkdir(d);
    for (const name of await this.fs.readdir(this.tmpDir)) await this.fs.remove(join(this.tmpDir, name));
  }

  /**
   * Makes the message durable: when this resolves, its bytes and envelope are fsynced in a journal
   * batch whose directory entry is fsynced too, and a 250 may be sent (RFC 5321 §6.1). When it
   * rejects, nothing of it is queued.
   */
  async write(envelope: Omit<Envelope, 'bodyLength' | 'bodyCrc32'>, body: Buffer): Promise<Envelope> {
    try {
      await this.commits.add({ id: envelope.id, record: encodeMessage(envelope, body) });
    } catch (err) {
      throw new RelayError('SPOOL_WRITE', `spool write failed: ${(err as Error).message}`, { cause: err });
    }
    if (this.cachedBytes + body.length <= CACHE_BYTES) {
      this.bodyCache.set(envelope.id, body);
      this.cachedBytes += body.length;
    }
    return { ...envelope, bodyLength: body.length, bodyCrc32: crc32(body) };
  }

  /** Every queued message with its recipient states; what does not decode is quarantined. */
  async recover(): Promise<RecoveredMessage[]> {
    const envelopes: Envelope[] = [];
    const finished = new Set<string>();
    const journalNames = await this.fs.readdir(this.journalDir);
    for (const name of journalNames) {
      if (!name.endsWith('.jnl')) continue;
      envelopes.push(...(await this.recoverBatch(name.slice(0, -4), finished)));
    }
    // A damaged batch was quarantined: copies of its messages that were intact were never
    // fsynced, and now nothing else holds them.
    const damagedBatches = this.damagedBatches;
    const standalone: string[] = [];
    const copies = new Set<string>();
    const queueNames = await this.fs.readdir(this.queueDir);
    for (const name of queueNames) {
      if (!name.endsWith('.msg')) continue;
      const id = name.slice(0, -4);
      const queued = this.queued.get(id);
      if (queued) {
        // Checked when first read: a copy torn by a power loss is rebuilt from the journal then.
        copies.add(id);
        continue;
      }
      // Finished, but killed before the copy was deleted.
      if (finished.has(id)) {
        await this.fs.remove(this.copyPath(id));
        continue;
      }
      const envelope = await this.recoverStandalone(id);
      if (envelope) envelopes.push(envelope);
      if (envelope) standalone.push(id);
    }
    if (damagedBatches > 0 && standalone.length > 0) {
      await Promise.all(standalone.map((id) => this.fs.syncPath(this.copyPath(id))));
      await this.fs.syncDir(this.queueDir);
    }
    for (const [id, queued] of this.queued) {
      if (copies.has(id) || !queued.journal) continue;
      const record = await this.readJournal(queued.journal).catch(() => undefined);
      if (record) this.writeCopy(id, queued, record);
    }
    const recovered: RecoveredMessage[] = [];
    for (const envelope of envelopes) {
      let stateText = '';
      try {
        stateText = (await this.fs.readFile(this.statePath(envelope.id))).toString('utf8');
        this.withStates.add(envelope.id);
      } catch {
        // no state file: no attempt was recorded yet
      }
      recovered.push({ envelope, states: decodeStateLog(stateText, envelope.recipients.length) });
    }
    // Left by a crash between finishing a message or batch and deleting what went with it.
    for (const name of queueNames) {
      if (name.endsWith('.rcpt') && !this.queued.has(name.slice(0, -5))) {
        await this.fs.remove(join(this.queueDir, name));
      }
    }
    for (const name of journalNames) {
      if (name.endsWith('.done') && !this.batches.has(name.slice(0, -5))) {
        await this.fs.remove(join(this.journalDir, name));
      }
    }
    return recovered;
  }

  /** The message bytes; a message that no longer decodes is quarantined and reported as undefined. */
  async readBody(id: string): Promise<Buffer | undefined> {
    const cached = this.bodyCache.get(id);
    if (cached) return cached;
    const queued = this.queued.get(id);
    if (!queued) return undefined;
    /** Why the message is unreadable, once some damage was seen. */
    let damage: string | undefined;
    const copy = await this.fs.readFile(this.copyPath(id)).catch(() => undefined);
    if (copy) {
      const decoded = decodeMessage(copy);
      if (decoded.ok && decoded.envelope.id === id) {
        if (this.queued.get(id) === queued && queued.copySize === 0) this.countCopy(queued, copy.length);
        return decoded.body;
      }
      damage = decoded.ok ? 'record of another message' : decoded.reason;
    }
    // A copy torn by a power loss (it is not fsynced): the journal has the message.
    if (queued.journal) {
      const record = await this.readJournal(queued.journal).catch(() => undefined);
      if (record) {
        const decoded = decodeMessage(record);
        if (decoded.ok && decoded.envelope.id === id) {
          if (this.queued.get(id) === queued) this.writeCopy(id, queued, record);
          return decoded.body;
        }
        damage = decoded.ok ? 'record of another message' : decoded.reason;
      }
    }
    // Nothing on disk and no damage seen: removed meanwhile, nothing to quarantine.
    if (damage === undefined || this.queued.get(id) !== queued) return undefined;
    await this.quarantine(id, damage);
    return undefined;
  }

  /**
   * Appends recipient states. `durable` (fsync) is used for final states of messages that stay
   * queued for other recipients, so a delivered recipient is not delivered again after a crash.
   */
  async recordStates(id: string, states: RecipientState[], durable: boolean): Promise<void> {
    if (states.length === 0) return;
    this.withStates.add(id);
    await this.fs.append(this.statePath(id), states.map(encodeStateLine).join(''), durable);
  }

  /** Removes a message whose recipients are all final. */
  async remove(id: string): Promise<void> {
    const queued = this.forget(id);
    // Order matters: the done mark first (a copy without its journal record would be recovered as
    // a message of its own), then the copy, then the states (a queued message must not lose the
    // record of recipients already delivered), then the batch if it is empty.
    if (queued?.journal) this.markDone(queued.journal.batch, id);
    if (queued) await this.fs.remove(this.copyPath(id));
    if (this.withStates.delete(id)) await this.fs.remove(this.statePath(id));
    if (queued?.journal) await this.release(queued.journal.batch, id);
  }

  async quarantine(id: string, reason: string): Promise<void> {
    const queued = this.forget(id);
    await this.fs.rename(this.copyPath(id), join(this.quarantineDir, `${id}.msg`)).catch(() => undefined);
    if (queued?.journal) {
      const record = await this.readJournal(queued.journal).catch(() => undefined);
      if (record)
        await this.fs.writeFile(join(this.quarantineDir, `${id}.jnl`), record).catch(() => undefined);
      this.markDone(queued.journal.batch, id);
    }
    await this.fs.rename(this.statePath(id), join(this.quarantineDir, `${id}.rcpt`)).catch(() => undefined);
    this.withStates.delete(id);
    if (queued?.journal) await this.release(queued.journal.batch, id);
    this.events.quarantined(id, reason);
  }

  freeBytes(): Promise<number> {
    return this.fs.freeBytes(this.dir);
  }

  /**
   * One group commit: all records in one new batch, written, renamed into journal/ and fsynced
   * with its directory; then each message's copy in queue/. Throws with nothing queued when any
   * step before the copies fails.
   */
  private async persist(items: PendingRecord[]): Promise<void> {
    const id = this.newId(Date.now());
    const { file, spans } = encodeBatch(items.map((item) => item.record));
    const tmp = join(this.tmpDir, id);
    const path = this.batchPath(id);
    let fd: number | undefined;
    let renamed = false;
    try {
      fd = this.fs.createFile(tmp, file);
      this.fs.renameSync(tmp, path);
      renamed = true;
      // File fsync and the shared directory fsync run together: the 250s wait for both. A crash
      // between them can leave a renamed batch whose data is not on disk; its frames fail their
      // checksums and recovery quarantines them - none of them was acknowledged.
      const [data, dir] = await Promise.allSettled([this.fs.syncFile(fd), this.journalDirSync.request()]);
      if (data.status === 'rejected') throw data.reason as Error;
      if (dir.status === 'rejected') throw dir.reason as Error;
    } catch (err) {
      await this.fs.remove(renamed ? path : tmp).catch(() => undefined);
      throw err;
    } finally {
      if (fd !== undefined) this.fs.closeFile(fd);
    }
    const batch: Batch = {
      id,
      size: file.length,
      committedAt: Date.now(),
      live: new Set(),
      hasDoneLog: false,
      deleted: false,
    };
    this.batches.set(id, batch);
    this.totalBytes += file.length;
    items.forEach((item, i) => {
      const span = spans[i]!;
      const queued: Queued = { journal: { batch, offset: span.offset, length: span.length }, copySize: 0 };
      batch.live.add(item.id);
      this.queued.set(item.id, queued);
      this.writeCopy(item.id, queued, item.record);
    });
  }

  /** Writes queue/<id>.msg (no fsync: the journal has the message); failure leaves it journal-only. */
  private writeCopy(id: string, queued: Queued, record: Buffer): void {
    try {
      this.fs.replaceFile(this.copyPath(id), record);
      this.countCopy(queued, record.length);
    } catch {
      // Served from the journal; retiring the batch writes the copy again.
      this.countCopy(queued, 0);
    }
  }

  private countCopy(queued: Queued, size: number): void {
    this.totalBytes += size - queued.copySize;
    queued.copySize = size;
  }

  /**
   * Adopts the queued messages of a batch found at start. A damaged batch is not served in place:
   * its intact messages are committed again as a new batch, then the file moves to quarantine
   * whole, every damaged span counted.
   */
  private async recoverBatch(base: string, finished: Set<string>): Promise<Envelope[]> {
    const path = this.batchPath(base);
    let file: Buffer;
    try {
      file = await this.fs.readFile(path);
    } catch (err) {
      await this.fs.rename(path, join(this.quarantineDir, `${base}.jnl`)).catch(() => undefined);
      this.events.quarantined(base, `unreadable: ${(err as Error).message}`);
      return [];
    }
    const decoded = decodeBatch(file);
    const damaged: DamagedSpan[] = [...decoded.damaged];
    const done = decodeDoneLog(await this.readText(this.donePath(base)));
    for (const id of done) finished.add(id);
    const keep: { envelope: Envelope; offset: number; length: number; record: Buffer }[] = [];
    for (const frame of decoded.frames) {
      const message = decodeMessage(frame.record);
      if (!message.ok) {
        damaged.push({ offset: frame.offset, length: frame.length, reason: message.reason });
        continue;
      }
      // Already queued from another batch: a crash interrupted the rewrite of a damaged batch.
      if (done.has(message.envelope.id) || this.queued.has(message.envelope.id)) continue;
      keep.push({ envelope: message.envelope, ...frame });
    }
    if (damaged.length > 0) {
      this.damagedBatches++;
      if (keep.length > 0) await this.persist(keep.map((k) => ({ id: k.envelope.id, record: k.record })));
      await this.fs.rename(path, join(this.quarantineDir, `${base}.jnl`)).catch(() => undefined);
      await this.fs.remove(this.donePath(base));
      for (const d of damaged) this.events.quarantined(`${base}@${d.offset}`, d.reason);
      return keep.map((k) => k.envelope);
    }
    if (keep.length === 0) {
      await this.fs.remove(path);
      await this.fs.remove(this.donePath(base));
      return [];
    }
    const batch: Batch = {
      id: base,
      size: file.length,
      committedAt: 0,
      live: new Set(),
      hasDoneLog: done.size > 0,
      deleted: false,
    };
    this.batches.set(base, batch);
    this.totalBytes += file.length;
    for (const k of keep) {
      batch.live.add(k.envelope.id);
      this.queued.set(k.envelope.id, { journal: { batch, offset: k.offset, length: k.length }, copySize: 0 });
    }
    return keep.map((k) => k.envelope);
  }

  /** A queue/<id>.msg with no journal record: retired from the journal, or from an older relay. */
  private async recoverStandalone(id: string): Promise<Envelope | undefined> {
    let file: Buffer;
    try {
      file = await this.fs.readFile(this.copyPath(id));
    } catch (err) {
      await this.quarantine(id, `unreadable: ${(err as Error).message}`);
      return undefined;
    }
    const decoded = decodeMessage(file);
    if (!decoded.ok || decoded.envelope.id !== id) {
      await this.quarantine(id, decoded.ok ? 'id does not match file name' : decoded.reason);
      return undefined;
    }
    this.queued.set(id, { journal: undefined, copySize: file.length });
    this.totalBytes += file.length;
    return decoded.envelope;
  }

  /**
   * Retires the oldest batch that has held messages for longer than retireAfterMs, in the
   * background: its messages' copies are fsynced with queue/, then the batch goes. A failure
   * leaves the batch in place, to be tried again later.
   */
  private retireOld(now: number): void {
    if (this.retiring || now < this.retireNotBefore) return;
    const oldest = this.batches.values().next().value;
    if (!oldest || oldest.committedAt + this.retireAfterMs >= now) return;
    this.retiring = true;
    void this.retire(oldest)
      .catch(() => {
        this.retireNotBefore = Date.now() + this.retireAfterMs;
      })
      .finally(() => {
        this.retiring = false;
      });
  }

  private async retire(batch: Batch): Promise<void> {
    const ids = [...batch.live];
    await Promise.all(ids.map((id) => this.makeCopyDurable(id, batch)));
    await this.fs.syncDir(this.queueDir);
    for (const id of ids) {
      const queued = this.queued.get(id);
      if (queued?.journal?.batch === batch && queued.copySize > 0) {
        queued.journal = undefined;
        batch.live.delete(id);
      }
    }
    if (batch.live.size === 0) await this.deleteBatch(batch);
    // Still holds a damaged record (readBody will quarantine it): not retired again.
    else this.batches.delete(batch.id);
  }

  private async makeCopyDurable(id: string, batch: Batch): Promise<void> {
    const queued = this.queued.get(id);
    if (queued?.journal?.batch !== batch) return;
    // Copies found at start are rewritten from the journal: a power loss may have torn them.
    if (queued.copySize === 0) {
      const record = await this.readJournal(queued.journal);
      if (this.queued.get(id) !== queued || !decodeMessage(record).ok) return;
      this.writeCopy(id, queued, record);
    }
    try {
      await this.fs.syncPath(this.copyPath(id));
    } catch (err) {
      if (this.queued.get(id) === queued) throw err; // else finished meanwhile: nothing to keep
    }
  }

  /** Marks a message of a batch finished. Not fsynced, like the unlink of a finished message: it
   * must survive kill -9, and a power loss can only bring the message back (a duplicate). */
  private markDone(batch: Batch, id: string): void {
    batch.hasDoneLog = true;
    try {
      this.fs.appendSync(this.donePath(batch.id), encodeDoneLine(id));
    } catch {
      // Not recorded: a restart delivers the message again (a duplicate, never a loss).
    }
  }

  /** The last message out deletes the batch. */
  private async release(batch: Batch, id: string): Promise<void> {
    batch.live.delete(id);
    if (batch.live.size === 0) await this.deleteBatch(batch);
  }

  private async deleteBatch(batch: Batch): Promise<void> {
    if (batch.deleted) return;
    batch.deleted = true;
    this.batches.delete(batch.id);
    this.totalBytes -= batch.size;
    await this.fs.remove(this.batchPath(batch.id));
    if (batch.hasDoneLog) await this.fs.remove(this.donePath(batch.id));
  }

  /** Drops a message from the in-memory indexes (not from disk); returns what it was. */
  private forget(id: string): Queued | undefined {
    const queued = this.queued.get(id);
    this.queued.delete(id);
    if (queued) this.totalBytes -= queued.copySize;
    const cached = this.bodyCache.get(id);
    if (cached) {
      this.cachedBytes -= cached.length;
      this.bodyCache.delete(id);
    }
    return queued;
  }

  private readJournal(at: { batch: Batch; offset: number; length: number }): Promise<Buffer> {
    return this.fs.readRange(this.batchPath(at.batch.id), at.offset, at.length);
  }

  private async readText(path: string): Promise<string> {
    try {
      return (await this.fs.readFile(path)).toString('utf8');
    } catch {
      return '';
    }
  }

  private copyPath(id: string): string {
    return join(this.queueDir, `${id}.msg`);
  }

  private statePath(id: string): string {
    return join(this.queueDir, `${id}.rcpt`);
  }

  private batchPath(batchId: string): string {
    return join(this.journalDir, `${batchId}.jnl`);
  }

  private donePath(batchId: string): string {
    return join(this.journalDir, `${batchId}.done`);
  }
}
