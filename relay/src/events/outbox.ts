// The events outbox: append-only segment files in one directory (`<seq>.events`, 16 digits) plus
// an `ack` file naming the position the receiver has acknowledged. Appends are group-committed:
// the events that arrive while one write+fsync runs go out in the next one, and each append's
// promise resolves once its lines are on disk. Each process writes to new segments only (a torn
// last line of a previous process's segment is left behind, skipped by the CRC). The directory is
// bounded: when it grows past maxBytes the oldest segment is deleted and its unsent events are
// counted as dropped (its events in the batch being sent only if the receiver then refuses them:
// in-flight.ts); mail never waits for the receiver or for the disk.
// A segment is opened per write and per read, never held open: a descriptor held for writing keeps
// the spool volume from being remounted read-only under the relay (see suppression/journal.ts).
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeEvents, encodeEvent } from './codec.ts';
import type { MailEvent } from './event.ts';
import { droppedSegmentFate, type Position } from './in-flight.ts';

interface Segment {
  seq: number;
  /** Bytes written (complete lines only). */
  bytes: number;
  /** End offsets of the events in this segment, in order: counts events before any offset. */
  ends: number[];
}

export interface OutboxOptions {
  dir: string;
  maxBytes: number;
  /** Called with the number of unsent events lost: `outbox_full` (oldest dropped) or `write_error`. */
  dropped(count: number, reason: 'outbox_full' | 'write_error'): void;
  /** Damaged lines skipped while reading (a crash tore a write). */
  damaged?(count: number): void;
}

/** Most bytes read for one batch: events are a few hundred bytes, a line is never near this. */
const READ_BYTES = 1024 * 1024;
const SEGMENT = /^(\d{16})\.events$/;
const name = (seq: number) => `${String(seq).padStart(16, '0')}.events`;

/** Segment size: an eighth of the bound (the most dropped at once), between 8 KiB and 8 MiB. */
function segmentBytes(maxBytes: number): number {
  return Math.max(8 * 1024, Math.min(8 * 1024 * 1024, Math.floor(maxBytes / 8)));
}

/** Appends waiting for a write: `done(true)` once on disk, `done(false)` when the disk refused them. */
type Pending = { lines: Buffer[]; done: (written: boolean) => void; handedOver: boolean };

export class Outbox {
  private readonly o: OutboxOptions;
  /** Segments on disk, oldest first; the last is the one being written (once this process wrote). */
  private segments: Segment[] = [];
  /** The first segment number this process writes; older ones are sealed. */
  private firstOwnSeq = 0;
  /** What the receiver acknowledged: everything before this position is sent. */
  private ack: Position = { seq: 0, offset: 0 };
  /** The end of the batch being POSTed (sending()); undefined: none in flight. */
  private inFlightEnd: Position | undefined;
  /** Events of the batch in flight whose segment was dropped: sent if it is accepted, else dropped. */
  private held = 0;
  /** Appends waiting for the next write+fsync. */
  private pending: Pending[] = [];
  private flushing = false;
  /** Marks the directory read (open()). */
  private opened: () => void = () => undefined;
  /** The write chain; it starts once open() has read the directory, so no write runs before it. */
  private running: Promise<void> = new Promise((resolve) => (this.opened = resolve));
  /** Told when events became readable (the sender waits on it). */
  onAppended: () => void = () => undefined;

  constructor(o: OutboxOptions) {
    this.o = o;
  }

  /** Reads the directory: segments, their events, the acknowledged position. */
  async open(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true });
    const seqs = (await readdir(this.o.dir))
      .map((f) => SEGMENT.exec(f)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const seq of seqs) {
      const decoded = decodeEvents(await readFile(join(this.o.dir, name(seq))), 0);
      if (decoded.damaged) this.o.damaged?.(decoded.damaged);
      this.segments.push({ seq, bytes: decoded.end, ends: decoded.events.map((e) => e.end) });
    }
    try {
      const saved = JSON.parse(await readFile(join(this.o.dir, 'ack'), 'utf8')) as Position;
      if (Number.isInteger(saved.seq) && Number.isInteger(saved.offset)) this.ack = saved;
    } catch {
      // No ack file yet: nothing was acknowledged.
    }
    this.firstOwnSeq = (seqs.at(-1) ?? 0) + 1;
    this.normaliseAck();
    await this.deleteAcked();
    this.opened();
  }

  /** Appends events; resolves once they are fsynced (or counted as dropped if the disk refused). */
  append(events: readonly MailEvent[]): Promise<void> {
    return this.write(events, false).then(() => undefined);
  }

  /**
   * Appends events handed over by a peer: resolves once they are fsynced, rejects when the disk
   * refused them (the peer keeps them then; they are not counted as dropped here).
   */
  async store(events: readonly MailEvent[]): Promise<void> {
    if (!(await this.write(events, true))) throw new Error('events outbox write failed');
  }

  /** True once the events are on disk, false when the write failed. */
  private write(events: readonly MailEvent[], handedOver: boolean): Promise<boolean> {
    if (events.length === 0) return Promise.resolve(true);
    return new Promise<boolean>((done) => {
      this.pending.push({ lines: events.map(encodeEvent), done, handedOver });
      if (!this.flushing) {
        this.flushing = true;
        this.running = this.running.then(() => this.flush());
      }
    });
  }

  /** Resolves once every append made before the call is on disk. */
  settled(): Promise<void> {
    // The chain's tail: a flush already writing (flushing is false again by then) and any queued.
    return this.running;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.flushing = false;
    const lines = batch.flatMap((p) => p.lines);
    let written = true;
    try {
      let i = 0;
      while (i < lines.length) {
        const segment = this.writable();
        const chunk: Buffer[] = [];
        let bytes = 0;
        // At least one line per segment, however long.
        while (i < lines.length) {
          const line = lines[i]!;
          if (chunk.length > 0 && segment.bytes + bytes + line.length > this.limit()) break;
          chunk.push(line);
          bytes += line.length;
          i++;
        }
        const handle = await open(join(this.o.dir, name(segment.seq)), 'a');
        try {
          await handle.writev(chunk);
          await handle.sync();
        } finally {
          await handle.close();
        }
        for (const line of chunk) segment.ends.push((segment.bytes += line.length));
        if (segment.bytes >= this.limit()) this.roll();
      }
      await this.bound();
    } catch {
      // A full or read-only disk: the events are lost, counted, and mail goes on.
      written = false;
      const lost = batch.filter((p) => !p.handedOver).reduce((n, p) => n + p.lines.length, 0);
      if (lost > 0) this.o.dropped(lost, 'write_error');
    }
    for (const p of batch) p.done(written);
    this.onAppended();
  }

  private limit(): number {
    return segmentBytes(this.o.maxBytes);
  }

  /** The segment to write to: this process's last one, created on first use. */
  private writable(): Segment {
    const last = this.segments.at(-1);
    if (last && last.seq >= this.firstOwnSeq) return last;
    const segment: Segment = { seq: this.firstOwnSeq, bytes: 0, ends: [] };
    this.segments.push(segment);
    return segment;
  }

  private roll(): void {
    const last = this.segments.at(-1)!;
    this.segments.push({ seq: last.seq + 1, bytes: 0, ends: [] });
  }

  /** Drops oldest segments while the outbox is over its bound (never the one being written). */
  private async bound(): Promise<void> {
    while (this.bytes > this.o.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift()!;
      const { dropped, held } = droppedSegmentFate(oldest, this.ack, this.inFlightEnd);
      this.held += held;
      if (dropped > 0) this.o.dropped(dropped, 'outbox_full');
      await unlink(join(this.o.dir, name(oldest.seq))).catch(() => undefined);
      this.normaliseAck();
    }
  }

  private ackOffsetIn(segment: Segment): number {
    return segment.seq === this.ack.seq ? this.ack.offset : 0;
  }

  /** An ack older than the oldest segment left points at that segment's start. */
  private normaliseAck(): void {
    const first = this.segments[0];
    if (first && this.ack.seq < first.seq) this.ack = { seq: first.seq, offset: 0 };
  }

  /** Bytes of all segments on disk. */
  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  /** Events written and not yet acknowledged (those of a dropped segment still in flight too). */
  get unsent(): number {
    let n = this.held;
    for (const s of this.segments) {
      if (s.seq < this.ack.seq) continue;
      const from = this.ackOffsetIn(s);
      n += s.ends.length - s.ends.filter((e) => e <= from).length;
    }
    return n;
  }

  /** Up to `max` unacknowledged events in order, and the position after the last of them. */
  async read(max: number): Promise<{ events: MailEvent[]; end: Position }> {
    const events: MailEvent[] = [];
    let end = { ...this.ack };
    for (const s of this.segments) {
      if (s.seq < end.seq || events.length >= max) continue;
      const from = s.seq === end.seq ? end.offset : 0;
      if (from >= s.bytes) {
        // Wholly read: the position moves on only past sealed segments.
        if (s !== this.segments.at(-1)) end = { seq: s.seq + 1, offset: 0 };
        continue;
      }
      const buffer = await readRange(
        join(this.o.dir, name(s.seq)),
        from,
        Math.min(s.bytes - from, READ_BYTES),
      );
      // Deleted under us by the bound: what is left starts at the next segment.
      if (!buffer) {
        end = { seq: s.seq + 1, offset: 0 };
        continue;
      }
      const decoded = decodeEvents(buffer, from, max - events.length);
      if (decoded.damaged) this.o.damaged?.(decoded.damaged);
      events.push(...decoded.events.map((d) => d.event));
      end = { seq: s.seq, offset: decoded.end };
    }
    return { events, end };
  }

  /** The batch read up to `end` is being sent: a segment dropped meanwhile holds its events. */
  sending(end: Position): void {
    this.inFlightEnd = end;
  }

  /** The batch in flight was not accepted: its events whose segment was dropped are lost now. */
  failed(): void {
    if (this.held > 0) this.o.dropped(this.held, 'outbox_full');
    this.held = 0;
    this.inFlightEnd = undefined;
  }

  /**
   * The receiver acknowledged everything before `position` (the batch in flight, if any: accepted
   * wins over a drop): saved, then sent segments deleted.
   */
  async commit(position: Position): Promise<void> {
    this.held = 0;
    this.inFlightEnd = undefined;
    if (position.seq < this.ack.seq || (position.seq === this.ack.seq && position.offset <= this.ack.offset))
      return;
    this.ack = position;
    this.normaliseAck();
    const path = join(this.o.dir, 'ack');
    const handle = await open(`${path}.tmp`, 'w');
    try {
      await handle.writeFile(JSON.stringify(this.ack));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(`${path}.tmp`, path);
    await this.deleteAcked();
  }

  /** Deletes sealed segments wholly before the acknowledged position. */
  private async deleteAcked(): Promise<void> {
    while (this.segments.length > 1) {
      const first = this.segments[0]!;
      const done = first.seq < this.ack.seq || (first.seq === this.ack.seq && this.ack.offset >= first.bytes);
      if (!done) break;
      this.segments.shift();
      await unlink(join(this.o.dir, name(first.seq))).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.running;
  }
}

/** `length` bytes of a file from `offset`; undefined when the file is gone. */
async function readRange(path: string, offset: number, length: number): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
