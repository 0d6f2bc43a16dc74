// Group commit for message data: writers hand in their records and wait; everything that arrives
// while a commit is being written and fsynced goes into the next one. N concurrent sessions then
// cost one write and one fsync per batch instead of N, and the batch grows with the load.
//
// Big messages change the trade: a commit of megabytes costs its bytes, not its fsync, and one
// commit at a time left the disk idle while the next batch waited. A batch that holds maxBytes
// is committed at once, next to the running ones (up to maxConcurrent), as Postfix's smtpd
// processes each write and fsync their own queue file in parallel.

interface Waiter<T> {
  item: T;
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

export interface GroupCommitOptions<T> {
  /** Bounds a batch (a huge batch would hold the first writer's 250 back). */
  maxItems: number;
  /** While writers are concurrent, a commit waits this long for more of them. */
  gatherMs?: number;
  /** A batch is full at this many bytes: it starts at once, beside running commits. */
  maxBytes?: number;
  /** Commits in flight at once; only full batches start beside a running one. */
  maxConcurrent?: number;
  /** Bytes of one item (for maxBytes). */
  sizeOf?: (item: T) => number;
}

export class GroupCommit<T> {
  private readonly commit: (items: T[]) => Promise<void>;
  private readonly maxItems: number;
  private readonly gatherMs: number;
  private readonly maxBytes: number;
  private readonly maxConcurrent: number;
  private readonly sizeOf: (item: T) => number;
  /** Items handed in and not yet part of a commit. */
  private pending: Waiter<T>[] = [];
  /** Bytes of the pending items. */
  private pendingBytes = 0;
  /** Commits being written and fsynced now. */
  private running = 0;
  /** True once a commit is scheduled (next turn of the event loop, or after the gather window). */
  private scheduled = false;
  /** Waits out the gather window; cleared when a full batch is waiting before it ends. */
  private gatherTimer: NodeJS.Timeout | undefined;
  /** Writers in the last commit; more than one means concurrent writers, worth waiting for. */
  private lastBatchSize = 0;

  /** `commit` makes all its items durable or throws; every waiter of that batch gets its outcome. */
  constructor(commit: (items: T[]) => Promise<void>, options: GroupCommitOptions<T>) {
    this.commit = commit;
    this.maxItems = options.maxItems;
    this.gatherMs = options.gatherMs ?? 0;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.maxConcurrent = options.maxConcurrent ?? 1;
    this.sizeOf = options.sizeOf ?? (() => 0);
  }

  /** Resolves when `item` is durable; rejects when its batch failed (nothing of it is kept). */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const bytes = this.sizeOf(item);
      this.pending.push({ item, bytes, resolve, reject });
      this.pendingBytes += bytes;
      if (this.gatherTimer && this.full()) {
        // A full batch does not wait out the rest of the window.
        clearTimeout(this.gatherTimer);
        this.gatherTimer = undefined;
        this.scheduled = false;
      }
      this.schedule();
    });
  }

  private full(): boolean {
    return this.pending.length >= this.maxItems || this.pendingBytes >= this.maxBytes;
  }

  private schedule(): void {
    if (this.scheduled || this.pending.length === 0) return;
    const full = this.full();
    if (this.running >= (full ? this.maxConcurrent : 1)) return;
    this.scheduled = true;
    const start = () => {
      this.scheduled = false;
      this.gatherTimer = undefined;
      this.run();
    };
    // One turn of the event loop: sessions whose DATA ended in the same poll phase share a commit.
    // While writers are concurrent (the last commit had several), the commit also waits gatherMs
    // for more of them: each commit costs two fsyncs and a file's creation and deletion, and a
    // commit that finishes quickly would otherwise leave the next one only the few writers that
    // arrived meanwhile. A lone writer, or one writing after another, never waits.
    if (this.gatherMs > 0 && this.lastBatchSize > 1 && !full)
      this.gatherTimer = setTimeout(start, this.gatherMs);
    else setImmediate(start);
  }

  private run(): void {
    if (this.pending.length === 0) return;
    if (this.running >= (this.full() ? this.maxConcurrent : 1)) return;
    // Up to maxItems writers, and no more than one past maxBytes.
    let count = 0;
    let bytes = 0;
    while (count < this.pending.length && count < this.maxItems && bytes < this.maxBytes)
      bytes += this.pending[count++]!.bytes;
    const batch = this.pending.splice(0, count);
    this.pendingBytes -= bytes;
    this.lastBatchSize = batch.length;
    this.running++;
    // A commit that throws before its first await fails its batch like any other.
    new Promise<void>((resolve) => resolve(this.commit(batch.map((w) => w.item))))
      .then(
        () => {
          for (const w of batch) w.resolve();
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        this.running--;
        this.schedule();
      });
    // Another full batch may start beside this one.
    this.schedule();
  }
}
