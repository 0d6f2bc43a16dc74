// A message's DATA as it arrives. Small messages are gathered in memory and spooled whole, so the
// group commit shares one fsync among concurrent sessions; once a message passes `streamAfter`
// bytes it goes to a spool file of its own as it arrives (spool/stream.ts), and memory holds only
// the chunks the disk has not taken yet: a 1 MB message no longer sits whole in the process from
// its first chunk to its 250, and is not copied into a record.

/** Where a streamed message goes (spool/stream.ts SpoolStream). */
export interface MessageSink {
  push(chunk: Buffer): void;
  /** Bytes held until the disk takes them. */
  readonly pending: number;
  drained(cb: () => void): void;
  abort(): Promise<void>;
}

export type GatheredMessage<S> = { streamed: S } | { chunks: readonly Buffer[] };

export class DataIntake<S extends MessageSink> {
  private readonly open: (() => S | undefined) | undefined;
  private readonly streamAfter: number;
  private readonly maxPending: number;
  /** The chunks so far, while the message is gathered in memory. */
  private chunks: Buffer[] = [];
  private gatheredBytes = 0;
  /** The message's spool stream once it passed streamAfter. */
  private sink: S | undefined;

  /**
   * `open` starts a spool stream (undefined: none, the message stays in memory, as when the file
   * cannot be created); `maxPending`: bytes waiting for the disk before push() asks for a pause.
   */
  constructor(options: { open?: () => S | undefined; streamAfter: number; maxPending: number }) {
    this.open = options.open;
    this.streamAfter = options.streamAfter;
    this.maxPending = options.maxPending;
  }

  /** Takes a chunk; false when the DATA stream should pause until drained() calls back. */
  push(chunk: Buffer): boolean {
    if (this.sink) {
      this.sink.push(chunk);
      return this.sink.pending <= this.maxPending;
    }
    this.chunks.push(chunk);
    this.gatheredBytes += chunk.length;
    if (this.open && this.gatheredBytes >= this.streamAfter) {
      const sink = this.open();
      if (sink) {
        for (const c of this.chunks) sink.push(c);
        this.chunks = [];
        this.sink = sink;
        return sink.pending <= this.maxPending;
      }
    }
    return true;
  }

  drained(cb: () => void): void {
    if (this.sink) this.sink.drained(cb);
    else cb();
  }

  /** The message: its stream, or its chunks in order. */
  result(): GatheredMessage<S> {
    return this.sink ? { streamed: this.sink } : { chunks: this.chunks };
  }

  /** Drops the message (refused, or the client went away): its stream's file goes too. */
  abort(): Promise<void> {
    this.chunks = [];
    const sink = this.sink;
    this.sink = undefined;
    return sink ? sink.abort() : Promise.resolve();
  }
}
