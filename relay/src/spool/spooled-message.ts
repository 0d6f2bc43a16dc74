// A big queued message read for delivery chunk by chunk from its spool file, so sending it holds
// a chunk or two in memory, not the whole message in one Buffer per delivery in flight. The file
// (a journal batch or a queue/ copy) is opened once per attempt and read with positioned reads:
// it stays readable while the attempt lasts even if the spool retires or quarantines it meanwhile,
// and every transaction of the attempt (another MX, a VERP envelope, a requeue on a fresh
// connection) reads it again from the start.
//
// The record's envelope is read and checked when the message is opened; the message bytes are
// held against their CRC-32 as they are read, and the last chunk is not handed out before the
// whole checksum matched: a damaged message never reaches its end of data (the SMTP pool then
// drops the connection before CRLF.CRLF, so the receiver discards the transaction, RFC 5321
// §4.1.1.4), and the spool quarantines it as it does a record that fails to decode when read whole.
import { crc32 } from 'node:zlib';
import { rememberCleanLines } from '../security/bare-newline.ts';
import type { SpoolFs } from './fs-ops.ts';
import {
  BODY_CRC_MISMATCH,
  RECORD_PROBE_BYTES,
  locateRecord,
  recordEnvelope,
  type Envelope,
} from './record.ts';

/**
 * Bytes read (and written to the socket) at a time. 1 MB is 8 reads through the thread pool; the
 * socket's buffer takes a chunk before it asks to wait, so a message in flight holds about two.
 */
export const CHUNK_BYTES = 128 * 1024;

/** A queued message whose bytes no longer match their checksum: quarantined, never sent whole. */
export class SpoolDamage extends Error {
  readonly code = 'ESPOOLDAMAGED';
}

/** Where a record is in an open file. */
export interface RecordAt {
  fs: SpoolFs;
  fd: number;
  /** Offset of the record in the file and its length (a journal batch holds several). */
  offset: number;
  length: number;
}

export class SpooledMessage {
  readonly envelope: Envelope;
  /** Bytes of the message. */
  readonly length: number;
  private readonly fs: SpoolFs;
  private readonly fd: number;
  /** Offset of the message's first byte in the file. */
  private readonly start: number;
  /** The intake's guard scanned these bytes: chunks are marked clean (smtp-data.ts skips its scan). */
  private readonly clean: boolean;
  /** Quarantines the message; called once, with the reason, when damage is found. */
  private readonly onDamage: (reason: string) => Promise<void>;
  private damaged = false;
  private closed = false;

  private constructor(
    at: RecordAt,
    envelope: Envelope,
    start: number,
    clean: boolean,
    onDamage: (reason: string) => Promise<void>,
  ) {
    this.fs = at.fs;
    this.fd = at.fd;
    this.envelope = envelope;
    this.length = envelope.bodyLength;
    this.start = start;
    this.clean = clean;
    this.onDamage = onDamage;
  }

  /**
   * Reads the record's envelope (its first and last bytes, then the JSON). Resolves to the reason
   * when the record does not decode; the descriptor is then the caller's to close.
   */
  static async open(
    at: RecordAt,
    options: { clean: boolean; onDamage: (reason: string) => Promise<void> },
  ): Promise<SpooledMessage | { reason: string }> {
    const probe = Math.min(RECORD_PROBE_BYTES, at.length);
    const head = await at.fs.readAt(at.fd, probe, at.offset);
    const tail = await at.fs.readAt(at.fd, probe, at.offset + at.length - probe);
    if (head.length !== probe || tail.length !== probe) return { reason: 'truncated record' };
    const layout = locateRecord(head, tail, at.length);
    if (!layout.ok) return layout;
    const json = await at.fs.readAt(at.fd, layout.jsonLength, at.offset + layout.jsonStart);
    if (json.length !== layout.jsonLength) return { reason: 'truncated envelope' };
    const envelope = recordEnvelope(json, layout.bodyEnd - layout.bodyStart);
    if (!envelope.ok) return envelope;
    return new SpooledMessage(
      at,
      envelope.envelope,
      at.offset + layout.bodyStart,
      options.clean,
      options.onDamage,
    );
  }

  /**
   * The message in chunks of up to CHUNK_BYTES, from its first byte, each call anew. Throws
   * SpoolDamage (after quarantining the message) instead of handing out the last chunk when the
   * bytes read do not match the record's length and CRC-32. `transient`: every chunk is read
   * into the same buffer, valid until the next one is asked for (a pass that only looks at the
   * bytes, as DKIM's body hash, leaves no chunk behind for the garbage collector to find).
   */
  async *chunks(options: { transient?: boolean } = {}): AsyncGenerator<Buffer, void, undefined> {
    let crc = 0;
    const into = options.transient ? Buffer.allocUnsafe(Math.min(CHUNK_BYTES, this.length)) : undefined;
    for (let at = 0; at < this.length;) {
      const chunk = await this.read(at, Math.min(CHUNK_BYTES, this.length - at), into);
      crc = crc32(chunk, crc);
      at += chunk.length;
      if (at === this.length) await this.check(crc);
      yield chunk;
    }
    if (this.length === 0) await this.check(crc);
  }

  /** The message in one Buffer (checked), for what needs all of it at once (link tracking). */
  async whole(): Promise<Buffer> {
    const body = await this.read(0, this.length);
    await this.check(crc32(body));
    return body;
  }

  /** Closes the file; once every transaction of the attempt is done. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fs.closeFile(this.fd);
  }

  private async read(at: number, length: number, into?: Buffer): Promise<Buffer> {
    const chunk = await this.fs.readAt(this.fd, length, this.start + at, into);
    if (chunk.length !== length)
      await this.fail(`body is ${at + chunk.length} bytes, expected ${this.length}`);
    // A reused buffer is never sent, so never marked: its next bytes are not the ones scanned.
    if (this.clean && !into) rememberCleanLines(chunk);
    return chunk;
  }

  private async check(crc: number): Promise<void> {
    if (crc !== this.envelope.bodyCrc32) await this.fail(BODY_CRC_MISMATCH);
  }

  private async fail(reason: string): Promise<never> {
    if (!this.damaged) {
      this.damaged = true;
      await this.onDamage(reason);
    }
    throw new SpoolDamage(`queued message ${this.envelope.id} is damaged (${reason}): quarantined`);
  }
}
