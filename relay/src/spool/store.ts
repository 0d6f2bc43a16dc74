// The durable spool: the only code that writes queue files.
//
//   <dir>/tmp/<batch>          a batch being written; removed on start (never acknowledged)
//   <dir>/queue/<batch>.msg    the messages of one group commit: batch.ts frames around record.ts
//                              records, fsynced with its directory before any of them gets 250
//   <dir>/queue/<batch>.done   messages of that batch that are finished while others are queued
//   <dir>/queue/<id>.rcpt      recipient states of one message, appended after delivery attempts
//   <dir>/quarantine/          data that failed to decode, kept for a human, never delivered
//
// A queue/<id>.msg holding one bare record (no frames) is what relays before group commit wrote;
// it is still recovered and delivered.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { RelayError } from '../errors.ts';
import type { SpoolFs } from './fs-ops.ts';
import { GroupSync } from './group-sync.ts';
import { GroupCommit } from './group-commit.ts';
import {
  decodeBatch,
  decodeDoneLog,
  encodeBatch,
  encodeDoneLine,
  isBatchFile,
  type DamagedSpan,
} from './batch.ts';
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

export interface RecoveredMessage {
  envelope: Envelope;
  states: Map<number, RecipientState>;
}

export interface SpoolEvents {
  quarantined(id: string, reason: string): void;
}

/** One batch file on disk. */
interface Batch {
  id: string;
  path: string;
  size: number;
  /** Messages of this batch still queued; the file is unlinked when the last one finishes. */
  live: Set<string>;
  /** Whether `<batch>.done` exists (so removing the batch need not try an unlink that fails). */
  hasDoneLog: boolean;
}

/** Where a queued message's record is. */
type Location =
  | { kind: 'batch'; batch: Batch; offset: number; length: number }
  | { kind: 'single'; path: string; size: number };

interface PendingRecord {
  id: string;
  record: Buffer;
}

export class Spool {
  readonly dir: string;
  private readonly fs: SpoolFs;
  private readonly events: SpoolEvents;
  private readonly queueDir: string;
  private readonly tmpDir: string;
  private readonly quarantineDir: string;
  /** Shares queue-directory fsyncs between commits that overlap. */
  private readonly queueDirSync: GroupSync;
  /** Writes the records of concurrent sessions as one batch file with one fsync. */
  private readonly commits: GroupCommit<PendingRecord>;
  /** Every queued message's record. */
  private readonly locations = new Map<string, Location>();
  /** Bytes of the files in queue/ that hold queued messages (a batch counts whole). */
  private totalBytes = 0;
  /**
   * Bodies of recently written messages, so the first delivery attempt does not read back from
   * disk what was just fsynced. Bounded by CACHE_BYTES; a miss just reads the file.
   */
  private readonly bodyCache = new Map<string, Buffer>();
  private cachedBytes = 0;
  /** Messages that have a .rcpt file (so remove() need not try to unlink one that never existed). */
  private readonly withStates = new Set<string>();
  /** Counter making ids unique within one process; the random part makes them unique across restarts. */
  private sequence = 0;
  private readonly instance = randomBytes(3).toString('hex');

  constructor(options: { dir: string; fs: SpoolFs; events: SpoolEvents }) {
    this.dir = options.dir;
    this.fs = options.fs;
    this.events = options.events;
    this.queueDir = join(this.dir, 'queue');
    this.tmpDir = join(this.dir, 'tmp');
    this.quarantineDir = join(this.dir, 'quarantine');
    this.queueDirSync = new GroupSync(() => this.fs.syncDir(this.queueDir));
    this.commits = new GroupCommit((items) => this.persist(items), { maxItems: MAX_BATCH_MESSAGES });
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
    for (const d of [this.queueDir, this.tmpDir, this.quarantineDir]) await this.fs.mkdir(d);
    for (const name of await this.fs.readdir(this.tmpDir)) await this.fs.remove(join(this.tmpDir, name));
  }

  /**
   * Makes the message durable: when this resolves, its bytes and envelope are on disk in a batch
   * file whose directory entry is on disk too, and a 250 may be sent (RFC 5321 §6.1). When it
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

  /** Every decodable message in queue/, with its recipient states; the rest is quarantined. */
  async recover(): Promise<RecoveredMessage[]> {
    const names = await this.fs.readdir(this.queueDir);
    const envelopes: Envelope[] = [];
    for (const name of names) {
      if (!name.endsWith('.msg')) continue;
      const base = name.slice(0, -4);
      const path = join(this.queueDir, name);
      let file: Buffer;
      try {
        file = await this.fs.readFile(path);
      } catch (err) {
        await this.quarantine(base, `unreadable: ${(err as Error).message}`);
        continue;
      }
      if (isBatchFile(file)) envelopes.push(...(await this.recoverBatch(base, path, file)));
      else {
        const decoded = decodeMessage(file);
        if (!decoded.ok || decoded.envelope.id !== base) {
          await this.quarantine(base, decoded.ok ? 'id does not match file name' : decoded.reason);
          continue;
        }
        this.locations.set(base, { kind: 'single', path, size: file.length });
        this.totalBytes += file.length;
        envelopes.push(decoded.envelope);
      }
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
    // Left by a crash between removing a message or batch and removing what goes with it.
    for (const name of names) {
      const orphan =
        (name.endsWith('.rcpt') && !this.locations.has(name.slice(0, -5))) ||
        (name.endsWith('.done') && !names.includes(`${name.slice(0, -5)}.msg`));
      if (orphan) await this.fs.remove(join(this.queueDir, name));
    }
    return recovered;
  }

  /** The message bytes; a record that no longer decodes is quarantined and reported as undefined. */
  async readBody(id: string): Promise<Buffer | undefined> {
    const cached = this.bodyCache.get(id);
    if (cached) return cached;
    const location = this.locations.get(id);
    if (!location) return undefined;
    let bytes: Buffer;
    try {
      bytes =
        location.kind === 'batch'
          ? await this.fs.readRange(location.batch.path, location.offset, location.length)
          : await this.fs.readFile(location.path);
    } catch {
      return undefined;
    }
    const decoded = decodeMessage(bytes);
    if (decoded.ok && decoded.envelope.id === id) return decoded.body;
    await this.quarantine(id, decoded.ok ? 'record of another message' : decoded.reason);
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
    const location = this.locations.get(id);
    this.forget(id);
    // The message goes first, its states second: a crash in between must not leave a queued
    // message without the record of recipients already delivered.
    if (location?.kind === 'batch') await this.dropFromBatch(location.batch, id);
    else if (location) await this.fs.remove(location.path);
    if (this.withStates.delete(id)) await this.fs.remove(this.statePath(id));
  }

  async quarantine(id: string, reason: string): Promise<void> {
    const location = this.locations.get(id);
    this.forget(id);
    if (location?.kind === 'batch') {
      // The record is copied out for a human; the batch keeps serving the other messages.
      const bytes = await this.fs
        .readRange(location.batch.path, location.offset, location.length)
        .catch(() => undefined);
      if (bytes) await this.fs.writeFile(join(this.quarantineDir, `${id}.msg`), bytes).catch(() => undefined);
      await this.dropFromBatch(location.batch, id);
    } else {
      await this.fs
        .rename(join(this.queueDir, `${id}.msg`), join(this.quarantineDir, `${id}.msg`))
        .catch(() => undefined);
    }
    await this.fs.rename(this.statePath(id), join(this.quarantineDir, `${id}.rcpt`)).catch(() => undefined);
    this.withStates.delete(id);
    this.events.quarantined(id, reason);
  }

  freeBytes(): Promise<number> {
    return this.fs.freeBytes(this.dir);
  }

  /**
   * One group commit: all records in one new batch file, written, renamed into queue/ and fsynced
   * with its directory. Throws with nothing left in queue/ when any step fails.
   */
  private async persist(items: PendingRecord[]): Promise<void> {
    const id = this.newId(Date.now());
    const { file, spans } = encodeBatch(items.map((item) => item.record));
    const tmp = join(this.tmpDir, id);
    const path = join(this.queueDir, `${id}.msg`);
    let fd: number | undefined;
    let renamed = false;
    try {
      fd = this.fs.createFile(tmp, file);
      this.fs.renameSync(tmp, path);
      renamed = true;
      // File fsync and the shared directory fsync run together: the 250s wait for both. A crash
      // between them can leave a renamed batch whose data is not on disk; its frames fail their
      // checksums and recovery quarantines them - none of them was acknowledged.
      const [data, dir] = await Promise.allSettled([this.fs.syncFile(fd), this.queueDirSync.request()]);
      if (data.status === 'rejected') throw data.reason as Error;
      if (dir.status === 'rejected') throw dir.reason as Error;
    } catch (err) {
      await this.fs.remove(renamed ? path : tmp).catch(() => undefined);
      throw err;
    } finally {
      if (fd !== undefined) this.fs.closeFile(fd);
    }
    const batch: Batch = { id, path, size: file.length, live: new Set(), hasDoneLog: false };
    items.forEach((item, i) => {
      const span = spans[i]!;
      batch.live.add(item.id);
      this.locations.set(item.id, { kind: 'batch', batch, offset: span.offset, length: span.length });
    });
    this.totalBytes += file.length;
  }

  /**
   * Adopts the queued messages of a batch file found at start. A damaged batch is not served in
   * place: its intact messages are committed again as a new batch, then the file moves to
   * quarantine whole, every damaged span counted.
   */
  private async recoverBatch(base: string, path: string, file: Buffer): Promise<Envelope[]> {
    const decoded = decodeBatch(file);
    const damaged: DamagedSpan[] = [...decoded.damaged];
    const done = decodeDoneLog(await this.readText(this.donePath(base)));
    const keep: { envelope: Envelope; offset: number; length: number; record: Buffer }[] = [];
    for (const frame of decoded.frames) {
      const message = decodeMessage(frame.record);
      if (!message.ok) {
        damaged.push({ offset: frame.offset, length: frame.length, reason: message.reason });
        continue;
      }
      // Already queued from another batch: a crash interrupted the rewrite of a damaged batch.
      if (done.has(message.envelope.id) || this.locations.has(message.envelope.id)) continue;
      keep.push({ envelope: message.envelope, ...frame });
    }
    if (damaged.length > 0) {
      if (keep.length > 0) await this.persist(keep.map((k) => ({ id: k.envelope.id, record: k.record })));
      await this.fs.rename(path, join(this.quarantineDir, `${base}.msg`));
      await this.fs.remove(this.donePath(base));
      for (const d of damaged) this.events.quarantined(`${base}@${d.offset}`, d.reason);
      return keep.map((k) => k.envelope);
    }
    if (keep.length === 0) {
      await this.fs.remove(path);
      await this.fs.remove(this.donePath(base));
      return [];
    }
    const batch: Batch = { id: base, path, size: file.length, live: new Set(), hasDoneLog: done.size > 0 };
    for (const k of keep) {
      batch.live.add(k.envelope.id);
      this.locations.set(k.envelope.id, { kind: 'batch', batch, offset: k.offset, length: k.length });
    }
    this.totalBytes += file.length;
    return keep.map((k) => k.envelope);
  }

  /** Marks a message of a batch finished; the last one out removes the batch. */
  private async dropFromBatch(batch: Batch, id: string): Promise<void> {
    batch.live.delete(id);
    if (batch.live.size === 0) {
      this.totalBytes -= batch.size;
      await this.fs.remove(batch.path);
      if (batch.hasDoneLog) await this.fs.remove(this.donePath(batch.id));
      return;
    }
    // Not fsynced, like the unlink of a finished message: it must survive kill -9, and a power
    // loss can only bring the message back (a duplicate), never lose one.
    batch.hasDoneLog = true;
    this.fs.appendSync(this.donePath(batch.id), encodeDoneLine(id));
  }

  /** Drops a message from the in-memory indexes (not from disk). */
  private forget(id: string): void {
    this.locations.delete(id);
    const cached = this.bodyCache.get(id);
    if (cached) {
      this.cachedBytes -= cached.length;
      this.bodyCache.delete(id);
    }
  }

  private async readText(path: string): Promise<string> {
    try {
      return (await this.fs.readFile(path)).toString('utf8');
    } catch {
      return '';
    }
  }

  private statePath(id: string): string {
    return join(this.queueDir, `${id}.rcpt`);
  }

  private donePath(batchId: string): string {
    return join(this.queueDir, `${batchId}.done`);
  }
}
