// The durable spool: the only code that writes queue files.
//
//   <dir>/tmp/<batch>            a batch being written; removed on start (never acknowledged)
//   <dir>/journal/<batch>.jnl    the messages of one group commit: batch.ts frames around record.ts
//                                records, fsynced with its directory before any of them gets 250
//   <dir>/journal/<batch>.done   messages of that batch that are finished
//   <dir>/queue/<id>.msg         the message (record.ts), written COPY_DELAY_MS after its batch is
//                                durable if still queued, not fsynced: it survives kill -9, and
//                                after a power loss the journal rebuilds it
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
import { RelayError } from '../errors.ts';
import { rememberCleanLines } from '../security/bare-newline.ts';
import type { SpoolFs } from './fs-ops.ts';
import { GroupCommit } from './group-commit.ts';
import { Journal, type Batch, type JournalRecord } from './journal.ts';
import type { DamagedSpan } from './batch.ts';
import type { SpoolStream } from './stream.ts';
import { SpooledMessage } from './spooled-message.ts';
import {
  decodeMessage,
  decodeStateLog,
  encodeMessageParts,
  encodeStateLine,
  encodeStreamedTail,
  type Envelope,
  type RecipientState,
} from './record.ts';

const CACHE_BYTES = 64 * 1024 * 1024;
/**
 * Records this big or bigger are read for delivery in chunks (spooled-message.ts), not whole into
 * one Buffer per delivery in flight; the intake streams a message to its own batch from the same
 * size on (smtp/server.ts STREAM_AFTER_BYTES). Smaller ones are read in one piece.
 */
const STREAM_MIN_BYTES = 256 * 1024;
/** Bounds one commit, so a burst does not hold the first writer's 250 behind a huge write. */
const MAX_BATCH_MESSAGES = 256;
/**
 * While sessions write concurrently, a commit waits this long for more of them (group-commit.ts):
 * up to 2 ms more before a 250, for fewer commits (fsyncs, batch files) per message under load
 * (what it saved: docs/benchmarks.md, Figures behind code choices).
 */
const GATHER_MS = 2;
/**
 * A batch of this many bytes is committed at once, beside the running commits (up to
 * MAX_CONCURRENT_COMMITS): past a megabyte a commit costs its bytes, not its fsync, and one
 * commit at a time left received messages waiting while the disk wrote the previous batch.
 * Messages of 2-10 KB never fill one (256 x 10 KB is 2.5 MB, but the gather window closes first).
 */
const FULL_BATCH_BYTES = 1024 * 1024;
/**
 * Commits in flight at once; the thread pool (16 threads, main.ts) has threads for their writes and
 * fsyncs and 4 left for other file work. At 1 MB with 20 sessions on a loaded disk, 4 at a time
 * left most sessions waiting for another's fsync: 13-14 messages/s, 18-25 with 12-16 (alternating
 * runs at load 28-36, bench/relay-throughput/RESULTS.md). Postfix fsyncs one file per session.
 */
const MAX_CONCURRENT_COMMITS = 12;
/** A batch still holding messages this long is retired (their copies fsynced), freeing its space. */
const RETIRE_AFTER_MS = 60_000;
/**
 * A new message's copy in queue/ is written this long after its commit, and only if the message is
 * still queued then: most messages are delivered within it and never cost a copy (open, write,
 * close) and its unlink. Until then the fsynced journal alone holds the message, as it does for
 * every message between its commit and its copy.
 */
const COPY_DELAY_MS = 1000;
/**
 * Bounds the records held in memory for delayed copies. Beyond it a copy is still delayed, and
 * read back from the journal if needed: writing it at once (as before) wrote every message of
 * 1 MB twice and unlinked the second file a moment later.
 */
const MAX_DELAYED_COPY_BYTES = 16 * 1024 * 1024;

export interface RecoveredMessage {
  envelope: Envelope;
  states: Map<number, RecipientState>;
}

export interface SpoolEvents {
  quarantined(id: string, reason: string): void;
}

/** A queued message: its journal record while its batch lasts, and the size of its copy. */
interface Queued {
  journal: JournalRecord | undefined;
  /** Bytes of queue/<id>.msg; 0 when the copy could not be written (served from the journal). */
  copySize: number;
  /** Its copy is delayed (COPY_DELAY_MS) and not attempted yet: there is no file to delete. */
  copyDelayed?: boolean;
  /**
   * A streamed message: its batch file holds it alone and stands for its copy, so none is written
   * (a second write of a big body, read back first, and one more unlink) unless the batch retires.
   */
  ownBatch?: boolean;
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
  private readonly tmpDir: string;
  private readonly quarantineDir: string;
  private readonly retireAfterMs: number;
  private readonly copyDelayMs: number;
  /** Bytes of the records held until their delayed copies are written. */
  private delayedCopyBytes = 0;
  private readonly maxDelayedCopyBytes: number;
  /** The durable copy of recent messages. */
  private readonly journal: Journal;
  /** Writes the records of concurrent sessions as one batch with one fsync. */
  private readonly commits: GroupCommit<PendingRecord>;
  /** Every queued message. */
  private readonly queued = new Map<string, Queued>();
  /** True while a batch is being retired (one at a time, in the background). */
  private retiring = false;
  /** Damaged batches found by recover(). */
  private damagedBatches = 0;
  /** After a failed retirement, none is tried before this epoch ms. */
  private retireNotBefore = 0;
  /** Bytes of message copies in queue/ (the journal counts its own). */
  private copyBytes = 0;
  /**
   * Bodies of recently written messages, so the first delivery attempt does not read back from
   * disk what was just written. Bounded by CACHE_BYTES; a miss just reads the file.
   */
  private readonly bodyCache = new Map<string, Buffer>();
  private cachedBytes = 0;
  /**
   * Streamed messages whose bytes the intake scanned (Spool.write's cleanLines): they are not kept
   * in memory to be remembered as clean, so their bodies are marked when read back.
   */
  private readonly streamedClean = new Set<string>();
  /** Messages that have a .rcpt file (so remove() need not try to unlink one that never existed). */
  private readonly withStates = new Set<string>();
  /** Counter making ids unique within one process; the random part makes them unique across restarts. */
  private sequence = 0;
  private readonly instance = randomBytes(3).toString('hex');

  constructor(options: {
    dir: string;
    fs: SpoolFs;
    events: SpoolEvents;
    retireAfterMs?: number;
    /** 0 writes each copy right after its commit. */
    copyDelayMs?: number;
    /** Bytes of records held for delayed copies (the rest are read back from the journal). */
    maxDelayedCopyBytes?: number;
  }) {
    this.dir = options.dir;
    this.fs = options.fs;
    this.events = options.events;
    this.retireAfterMs = options.retireAfterMs ?? RETIRE_AFTER_MS;
    this.copyDelayMs = options.copyDelayMs ?? COPY_DELAY_MS;
    this.maxDelayedCopyBytes = options.maxDelayedCopyBytes ?? MAX_DELAYED_COPY_BYTES;
    this.queueDir = join(this.dir, 'queue');
    this.tmpDir = join(this.dir, 'tmp');
    this.quarantineDir = join(this.dir, 'quarantine');
    this.journal = new Journal({
      fs: this.fs,
      dir: join(this.dir, 'journal'),
      tmpDir: this.tmpDir,
      quarantineDir: this.quarantineDir,
      newId: () => this.newId(Date.now()),
    });
    this.commits = new GroupCommit(
      async (items) => {
        await this.persist(items, this.copyDelayMs);
        this.retireOld(Date.now());
      },
      {
        maxItems: MAX_BATCH_MESSAGES,
        gatherMs: GATHER_MS,
        maxBytes: FULL_BATCH_BYTES,
        maxConcurrent: MAX_CONCURRENT_COMMITS,
        sizeOf: (item) => item.record.length,
      },
    );
  }

  /** Bytes on disk for queued messages: journal batches and copies. */
  get bytes(): number {
    return this.journal.bytes + this.copyBytes;
  }

  newId(now: number): string {
    this.sequence = (this.sequence + 1) % 1_679_616;
    return `${now.toString(36)}${this.sequence.toString(36).padStart(4, '0')}${this.instance}`.toUpperCase();
  }

  /** Creates the folders and forgets half-written files from a previous run. */
  async open(): Promise<void> {
    for (const d of ['queue', 'journal', 'tmp', 'quarantine']) await this.fs.mkdir(join(this.dir, d));
    for (const name of await this.fs.readdir(this.tmpDir)) await this.fs.remove(join(this.tmpDir, name));
    this.journal.open();
  }

  /** Closes the descriptors the spool holds open (after the last write and removal). */
  close(): Promise<void> {
    return this.journal.close();
  }

  /**
   * Makes the message durable: when this resolves, its bytes and envelope are fsynced in a journal
   * batch whose directory entry is fsynced too, and a 250 may be sent (RFC 5321 §6.1). When it
   * rejects, nothing of it is queued. `cleanLines`: the caller vouches that the message has CRLF
   * line ends only and no NUL (scanned already), so its delivery does not scan it again.
   */
  async write(
    envelope: Omit<Envelope, 'bodyLength' | 'bodyCrc32'>,
    message: Buffer | readonly Buffer[],
    options: { cleanLines?: boolean } = {},
  ): Promise<Envelope> {
    // One copy of the message (into its record); the cached body is the record's own bytes.
    const {
      record,
      body,
      envelope: full,
    } = encodeMessageParts(envelope, Buffer.isBuffer(message) ? [message] : message);
    try {
      await this.commits.add({ id: envelope.id, record });
    } catch (err) {
      throw new RelayError('SPOOL_WRITE', `spool write failed: ${(err as Error).message}`, { cause: err });
    }
    // The caller scanned these bytes (the intake's guard): delivery need not scan them again.
    if (options.cleanLines) rememberCleanLines(body);
    if (this.cachedBytes + body.length <= CACHE_BYTES) {
      this.bodyCache.set(envelope.id, body);
      this.cachedBytes += body.length;
    }
    return full;
  }

  /**
   * Starts writing message `id` to a journal batch of its own as it arrives (stream.ts); throws
   * when its file cannot be created. commitStream makes it durable, SpoolStream.abort drops it.
   */
  openStream(id: string): SpoolStream {
    return this.journal.openStream(id);
  }

  /**
   * Makes a streamed message durable, as write() does for a whole one: when this resolves its
   * bytes and envelope are fsynced with journal/ and a 250 may be sent. Its body is not cached:
   * delivery reads it back from the journal (the page cache, as a rule).
   */
  async commitStream(
    stream: SpoolStream,
    envelope: Omit<Envelope, 'id' | 'bodyLength' | 'bodyCrc32'>,
    options: { cleanLines?: boolean } = {},
  ): Promise<Envelope> {
    const full: Envelope = {
      ...envelope,
      id: stream.id,
      bodyLength: stream.bodyLength,
      bodyCrc32: stream.bodyCrc32,
    };
    let at: JournalRecord;
    try {
      at = await this.journal.commitStream(stream, encodeStreamedTail(full));
    } catch (err) {
      throw new RelayError('SPOOL_WRITE', `spool write failed: ${(err as Error).message}`, { cause: err });
    }
    if (options.cleanLines) this.streamedClean.add(stream.id);
    const queued: Queued = { journal: at, copySize: 0, copyDelayed: true, ownBatch: true };
    this.queued.set(stream.id, queued);
    this.retireOld(Date.now());
    return full;
  }

  /** Every queued message with its recipient states; what does not decode is quarantined. */
  async recover(): Promise<RecoveredMessage[]> {
    const envelopes: Envelope[] = [];
    const finished = new Set<string>();
    const journalFiles = await this.journal.list();
    for (const id of journalFiles.batches) envelopes.push(...(await this.recoverBatch(id, finished)));
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
      const record = await this.journal.read(queued.journal).catch(() => undefined);
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
      recovered.push({ envelope, states: decodeStateLog(stateText, envelope) });
    }
    // Left by a crash between finishing a message or batch and deleting what went with it.
    for (const name of queueNames) {
      if (name.endsWith('.rcpt') && !this.queued.has(name.slice(0, -5))) {
        await this.fs.remove(join(this.queueDir, name));
      }
    }
    await this.journal.removeOrphanDoneLogs(journalFiles.doneLogs);
    return recovered;
  }

  /**
   * The message for a delivery attempt: a record of STREAM_MIN_BYTES or more as a SpooledMessage
   * read in chunks from its file (the journal's record while its batch lasts, else the copy; the
   * caller closes it), a smaller or cached one as readBody gives it. A record whose envelope does
   * not decode takes readBody's way (the other file, else quarantine); one whose bytes fail their
   * checksum while sent is quarantined then.
   */
  async readMessage(id: string): Promise<Buffer | SpooledMessage | undefined> {
    const queued = this.queued.get(id);
    if (!queued || this.bodyCache.has(id)) return this.readBody(id);
    if (queued.journal && queued.journal.length < STREAM_MIN_BYTES) return this.readBody(id);
    if (!queued.journal && queued.copyDelayed) return this.readBody(id);
    const path = queued.journal ? this.journal.pathOf(queued.journal) : this.copyPath(id);
    let file: { fd: number; size: number };
    try {
      file = await this.fs.openRead(path);
    } catch {
      return this.readBody(id);
    }
    const at = queued.journal ?? { offset: 0, length: file.size };
    let message: SpooledMessage | { reason: string } = { reason: 'small' };
    try {
      if (at.length >= STREAM_MIN_BYTES)
        message = await SpooledMessage.open(
          { fs: this.fs, fd: file.fd, offset: at.offset, length: at.length },
          {
            clean: this.streamedClean.has(id),
            onDamage: (reason) =>
              this.queued.get(id) === queued ? this.quarantine(id, reason) : Promise.resolve(),
          },
        );
    } catch {
      // Unreadable now: readBody reads it whole, or quarantines it.
    }
    if (message instanceof SpooledMessage && message.envelope.id === id) return message;
    this.fs.closeFile(file.fd);
    return this.readBody(id);
  }

  /** The message bytes; a message that no longer decodes is quarantined and reported as undefined. */
  async readBody(id: string): Promise<Buffer | undefined> {
    const body = await this.readStored(id);
    if (body && this.streamedClean.has(id)) rememberCleanLines(body);
    return body;
  }

  private async readStored(id: string): Promise<Buffer | undefined> {
    const cached = this.bodyCache.get(id);
    if (cached) return cached;
    const queued = this.queued.get(id);
    if (!queued) return undefined;
    /** Why the message is unreadable, once some damage was seen. */
    let damage: string | undefined;
    // No copy yet (delayed): not looked for (a failed open per delivery of every uncached message).
    const copy = queued.copyDelayed
      ? undefined
      : await this.fs.readFile(this.copyPath(id)).catch(() => undefined);
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
      const record = await this.journal.read(queued.journal).catch(() => undefined);
      if (record) {
        const decoded = decodeMessage(record);
        if (decoded.ok && decoded.envelope.id === id) {
          if (this.queued.get(id) === queued && !queued.ownBatch) this.writeCopy(id, queued, record);
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
    const batch = queued?.journal?.batch;
    if (batch && queued.copyDelayed && batch.live.size === 1 && batch.live.has(id)) {
      // Alone in its batch (a streamed message, a lone commit) and no copy written: deleting the
      // batch is its done mark, one unlink instead of a done log's open, write, close and unlink.
      // Then the states: a .rcpt without its message is removed at start.
      await this.journal.release(batch, id);
      if (this.withStates.delete(id)) await this.fs.remove(this.statePath(id));
      return;
    }
    // Order matters: the done mark first (a copy without its journal record would be recovered as
    // a message of its own), then the copy, then the states (a queued message must not lose the
    // record of recipients already delivered), then the batch if it is empty.
    if (queued?.journal) this.journal.markDone(queued.journal.batch, id);
    if (queued && !queued.copyDelayed) await this.fs.remove(this.copyPath(id));
    if (this.withStates.delete(id)) await this.fs.remove(this.statePath(id));
    if (queued?.journal) await this.journal.release(queued.journal.batch, id);
  }

  async quarantine(id: string, reason: string): Promise<void> {
    const queued = this.forget(id);
    await this.fs.rename(this.copyPath(id), join(this.quarantineDir, `${id}.msg`)).catch(() => undefined);
    if (queued?.journal) {
      const record = await this.journal.read(queued.journal).catch(() => undefined);
      if (record)
        await this.fs.writeFile(join(this.quarantineDir, `${id}.jnl`), record).catch(() => undefined);
      this.journal.markDone(queued.journal.batch, id);
    }
    await this.fs.rename(this.statePath(id), join(this.quarantineDir, `${id}.rcpt`)).catch(() => undefined);
    this.withStates.delete(id);
    if (queued?.journal) await this.journal.release(queued.journal.batch, id);
    this.events.quarantined(id, reason);
  }

  freeBytes(): Promise<number> {
    return this.fs.freeBytes(this.dir);
  }

  /**
   * One group commit, then each message's copy in queue/, at once or after `copyDelayMs` for the
   * messages still queued then (a failed copy is served from the journal).
   */
  private async persist(items: PendingRecord[], copyDelayMs: number): Promise<void> {
    const records = await this.journal.commit(items);
    this.queueCommitted(
      items.map((item, i) => ({ id: item.id, at: records[i]!, record: item.record })),
      copyDelayMs,
    );
  }

  /**
   * Queues committed messages; each one's copy in queue/ is written at once or after
   * `copyDelayMs` if still queued then, from its record in memory or read back from the journal.
   */
  private queueCommitted(
    items: { id: string; at: JournalRecord; record: Buffer }[],
    copyDelayMs: number,
  ): void {
    const queuedItems = items.map((item) => {
      const queued: Queued = { journal: item.at, copySize: 0 };
      this.queued.set(item.id, queued);
      if (copyDelayMs > 0) queued.copyDelayed = true;
      else this.writeCopy(item.id, queued, item.record);
      return { id: item.id, queued };
    });
    if (copyDelayMs <= 0) return;
    // Records are held for their copies up to a bound; past it (big messages, bursts) a copy still
    // waits, and is read back from the journal (the page cache, as a rule) if it is still needed.
    const bytes = items.reduce((sum, item) => sum + item.record.length, 0);
    const held =
      this.delayedCopyBytes + bytes <= this.maxDelayedCopyBytes
        ? items.map((item) => item.record)
        : undefined;
    if (held) this.delayedCopyBytes += bytes;
    setTimeout(() => {
      if (held) this.delayedCopyBytes -= bytes;
      queuedItems.forEach(({ id, queued }, i) => {
        if (queued.copyDelayed && this.queued.get(id) === queued)
          void this.writeDelayedCopy(id, queued, held?.[i]);
      });
    }, copyDelayMs).unref();
  }

  /** The delayed copy of a message still queued, from its held record or from the journal. */
  private async writeDelayedCopy(id: string, queued: Queued, held: Buffer | undefined): Promise<void> {
    const record = held ?? (await this.journal.read(queued.journal!).catch(() => undefined));
    if (!queued.copyDelayed || this.queued.get(id) !== queued) return; // finished meanwhile
    if (record) this.writeCopy(id, queued, record);
    // Unreadable now: served from the journal, and retiring the batch makes the copy.
    else delete queued.copyDelayed;
  }

  /** Writes queue/<id>.msg (no fsync: the journal has the message); failure leaves it journal-only. */
  private writeCopy(id: string, queued: Queued, record: Buffer): void {
    delete queued.copyDelayed;
    try {
      this.fs.replaceFile(this.copyPath(id), record);
      this.countCopy(queued, record.length);
    } catch {
      // Served from the journal; retiring the batch writes the copy again.
      this.countCopy(queued, 0);
    }
  }

  private countCopy(queued: Queued, size: number): void {
    this.copyBytes += size - queued.copySize;
    queued.copySize = size;
  }

  /**
   * Adopts the queued messages of a batch found at start. A damaged batch is not served in place:
   * its intact messages are committed again as a new batch, then the file moves to quarantine
   * whole, every damaged span counted.
   */
  private async recoverBatch(batchId: string, finished: Set<string>): Promise<Envelope[]> {
    const loaded = await this.journal.load(batchId);
    if (!loaded.ok) {
      this.events.quarantined(batchId, loaded.reason);
      return [];
    }
    for (const id of loaded.done) finished.add(id);
    const damaged: DamagedSpan[] = [...loaded.damaged];
    const keep: { envelope: Envelope; offset: number; length: number; record: Buffer }[] = [];
    for (const frame of loaded.frames) {
      const message = decodeMessage(frame.record);
      if (!message.ok) {
        damaged.push({ offset: frame.offset, length: frame.length, reason: message.reason });
        continue;
      }
      // Already queued from another batch: a crash interrupted the rewrite of a damaged batch.
      if (loaded.done.has(message.envelope.id) || this.queued.has(message.envelope.id)) continue;
      keep.push({ envelope: message.envelope, ...frame });
    }
    if (damaged.length > 0) {
      this.damagedBatches++;
      if (keep.length > 0) {
        await this.persist(
          keep.map((k) => ({ id: k.envelope.id, record: k.record })),
          0,
        );
      }
      await this.journal.quarantine(batchId);
      for (const d of damaged) this.events.quarantined(`${batchId}@${d.offset}`, d.reason);
      return keep.map((k) => k.envelope);
    }
    if (keep.length === 0) {
      await this.journal.discard(batchId);
      return [];
    }
    const records = this.journal.adopt(
      batchId,
      loaded.size,
      loaded.done.size > 0,
      keep.map((k) => ({ id: k.envelope.id, offset: k.offset, length: k.length })),
    );
    keep.forEach((k, i) => this.queued.set(k.envelope.id, { journal: records[i], copySize: 0 }));
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
    this.queued.set(id, { journal: undefined, copySize: 0 });
    this.countCopy(this.queued.get(id)!, file.length);
    return decoded.envelope;
  }

  /**
   * Retires the oldest batch that has held messages for longer than retireAfterMs, in the
   * background: its messages' copies are fsynced with queue/, then the batch goes. A failure
   * leaves the batch in place, to be tried again later.
   */
  private retireOld(now: number): void {
    if (this.retiring || now < this.retireNotBefore) return;
    const oldest = this.journal.oldest();
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
    if (batch.live.size === 0) await this.journal.delete(batch);
    // Still holds a damaged record (readBody will quarantine it): not retired again.
    else this.journal.exempt(batch);
  }

  private async makeCopyDurable(id: string, batch: Batch): Promise<void> {
    const queued = this.queued.get(id);
    if (queued?.journal?.batch !== batch) return;
    // Copies found at start are rewritten from the journal: a power loss may have torn them.
    if (queued.copySize === 0) {
      const record = await this.journal.read(queued.journal);
      if (this.queued.get(id) !== queued || !decodeMessage(record).ok) return;
      this.writeCopy(id, queued, record);
    }
    try {
      await this.fs.syncPath(this.copyPath(id));
    } catch (err) {
      if (this.queued.get(id) === queued) throw err; // else finished meanwhile: nothing to keep
    }
  }

  /** Drops a message from the in-memory indexes (not from disk); returns what it was. */
  private forget(id: string): Queued | undefined {
    const queued = this.queued.get(id);
    this.queued.delete(id);
    if (queued) this.copyBytes -= queued.copySize;
    const cached = this.bodyCache.get(id);
    if (cached) {
      this.cachedBytes -= cached.length;
      this.bodyCache.delete(id);
    }
    this.streamedClean.delete(id);
    return queued;
  }

  private copyPath(id: string): string {
    return join(this.queueDir, `${id}.msg`);
  }

  private statePath(id: string): string {
    return join(this.queueDir, `${id}.rcpt`);
  }
}
