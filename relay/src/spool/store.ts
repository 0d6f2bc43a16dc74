// The durable spool: the only code that writes queue files.
//
//   <dir>/tmp/<id>           being written; removed on start (never acknowledged)
//   <dir>/queue/<id>.msg     a queued message (record.ts), fsynced with its directory before 250
//   <dir>/queue/<id>.rcpt    recipient states appended after delivery attempts
//   <dir>/quarantine/        files that failed to decode, kept for a human, never delivered
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { RelayError } from '../errors.ts';
import type { SpoolFs } from './fs-ops.ts';
import { GroupSync } from './group-sync.ts';
import {
  decodeMessage,
  decodeStateLog,
  encodeMessage,
  encodeStateLine,
  type Envelope,
  type RecipientState,
} from './record.ts';

const CACHE_BYTES = 64 * 1024 * 1024;

export interface RecoveredMessage {
  envelope: Envelope;
  states: Map<number, RecipientState>;
}

export interface SpoolEvents {
  quarantined(id: string, reason: string): void;
}

export class Spool {
  readonly dir: string;
  private readonly fs: SpoolFs;
  private readonly events: SpoolEvents;
  private readonly queueDir: string;
  private readonly tmpDir: string;
  private readonly quarantineDir: string;
  /** Shares queue-directory fsyncs between concurrent writers (group commit). */
  private readonly queueDirSync: GroupSync;
  /** Bytes of message files in queue/, by id; summed for the spool-bytes metric. */
  private readonly sizes = new Map<string, number>();
  /** Sum of `sizes`. */
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
   * Makes the message durable: when this resolves, file and directory entry are on disk and a 250
   * may be sent (RFC 5321 §6.1). When it rejects, nothing is queued.
   */
  async write(envelope: Omit<Envelope, 'bodyLength' | 'bodyCrc32'>, body: Buffer): Promise<Envelope> {
    const record = encodeMessage(envelope, body);
    const tmp = join(this.tmpDir, envelope.id);
    const final = this.messagePath(envelope.id);
    let fd: number | undefined;
    let renamed = false;
    try {
      fd = this.fs.createFile(tmp, record);
      this.fs.renameSync(tmp, final);
      renamed = true;
      // File fsync and the shared directory fsync run together: the 250 waits for both. A crash
      // between them can leave a renamed file whose data is not on disk; its checksum fails and
      // recovery quarantines it - it was never acknowledged.
      await Promise.all([this.fs.syncFile(fd), this.queueDirSync.request()]);
    } catch (err) {
      await this.fs.remove(renamed ? final : tmp).catch(() => undefined);
      throw new RelayError('SPOOL_WRITE', `spool write failed: ${(err as Error).message}`, { cause: err });
    } finally {
      if (fd !== undefined) this.fs.closeFile(fd);
    }
    this.track(envelope.id, record.length);
    if (this.cachedBytes + body.length <= CACHE_BYTES) {
      this.bodyCache.set(envelope.id, body);
      this.cachedBytes += body.length;
    }
    return { ...envelope, bodyLength: body.length, bodyCrc32: crc32(body) };
  }

  /** Every decodable message in queue/, with its recipient states; the rest is quarantined. */
  async recover(): Promise<RecoveredMessage[]> {
    const names = await this.fs.readdir(this.queueDir);
    const recovered: RecoveredMessage[] = [];
    for (const name of names) {
      if (!name.endsWith('.msg')) continue;
      const id = name.slice(0, -4);
      let file: Buffer;
      try {
        file = await this.fs.readFile(join(this.queueDir, name));
      } catch (err) {
        await this.quarantine(id, `unreadable: ${(err as Error).message}`);
        continue;
      }
      const decoded = decodeMessage(file);
      if (!decoded.ok || decoded.envelope.id !== id) {
        await this.quarantine(id, decoded.ok ? 'id does not match file name' : decoded.reason);
        continue;
      }
      let stateText = '';
      try {
        stateText = (await this.fs.readFile(this.statePath(id))).toString('utf8');
        this.withStates.add(id);
      } catch {
        // no state file: no attempt was recorded yet
      }
      this.track(id, file.length);
      recovered.push({
        envelope: decoded.envelope,
        states: decodeStateLog(stateText, decoded.envelope.recipients.length),
      });
    }
    // A .rcpt file whose message is gone was left by a crash between the two unlinks.
    for (const name of names) {
      if (name.endsWith('.rcpt') && !names.includes(`${name.slice(0, -5)}.msg`)) {
        await this.fs.remove(join(this.queueDir, name));
      }
    }
    return recovered;
  }

  /** The message bytes; a file that no longer decodes is quarantined and reported as undefined. */
  async readBody(id: string): Promise<Buffer | undefined> {
    const cached = this.bodyCache.get(id);
    if (cached) return cached;
    let file: Buffer;
    try {
      file = await this.fs.readFile(this.messagePath(id));
    } catch {
      return undefined;
    }
    const decoded = decodeMessage(file);
    if (decoded.ok) return decoded.body;
    await this.quarantine(id, decoded.reason);
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
    await this.fs.remove(this.messagePath(id));
    if (this.withStates.delete(id)) await this.fs.remove(this.statePath(id));
    this.untrack(id);
  }

  async quarantine(id: string, reason: string): Promise<void> {
    for (const suffix of ['.msg', '.rcpt']) {
      await this.fs
        .rename(join(this.queueDir, id + suffix), join(this.quarantineDir, id + suffix))
        .catch(() => undefined);
    }
    this.untrack(id);
    this.events.quarantined(id, reason);
  }

  freeBytes(): Promise<number> {
    return this.fs.freeBytes(this.dir);
  }

  private messagePath(id: string): string {
    return join(this.queueDir, `${id}.msg`);
  }

  private statePath(id: string): string {
    return join(this.queueDir, `${id}.rcpt`);
  }

  private track(id: string, size: number): void {
    this.untrack(id);
    this.sizes.set(id, size);
    this.totalBytes += size;
  }

  private untrack(id: string): void {
    const cached = this.bodyCache.get(id);
    if (cached) {
      this.cachedBytes -= cached.length;
      this.bodyCache.delete(id);
    }
    this.totalBytes -= this.sizes.get(id) ?? 0;
    this.sizes.delete(id);
  }
}
