// Group commit for message data: writers hand in their records and wait; everything that arrives
// while a commit is being written and fsynced goes into the next one. N concurrent sessions then
// cost one write and one fsync per batch instead of N, and the batch grows with the load.

interface Waiter<T> {
  item: T;
  resolve(): void;
  reject(err: unknown): void;
}

export class GroupCommit<T> {
  private readonly commit: (items: T[]) => Promise<void>;
  private readonly maxItems: number;
  /** Items handed in and not yet part of a commit. */
  private pending: Waiter<T>[] = [];
  /** True while a commit is being written and fsynced (one at a time, so batches form). */
  private running = false;
  /** True once a commit is scheduled (next turn of the event loop, or after the gather window). */
  private scheduled = false;
  /** Waits out the gather window; cleared when maxItems writers are waiting before it ends. */
  private gatherTimer: NodeJS.Timeout | undefined;
  /** Writers in the last commit; more than one means concurrent writers, worth waiting for. */
  private lastBatchSize = 0;
  private readonly gatherMs: number;

  /**
   * `commit` makes all its items durable or throws; every waiter of that batch gets its outcome.
   * `maxItems` bounds a batch (a huge batch would hold the first writer's 250 back).
   */
  constructor(commit: (items: T[]) => Promise<void>, options: { maxItems: number; gatherMs?: number }) {
    this.commit = commit;
    this.maxItems = options.maxItems;
    this.gatherMs = options.gatherMs ?? 0;
  }

  /** Resolves when `item` is durable; rejects when its batch failed (nothing of it is kept). */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.gatherTimer && this.pending.length >= this.maxItems) {
        // A full batch does not wait out the rest of the window.
        clearTimeout(this.gatherTimer);
        this.gatherTimer = undefined;
        this.scheduled = false;
      }
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    const start = () => {
      this.scheduled = false;
      this.gatherTimer = undefined;
      void this.run();
    };
    // One turn of the event loop: sessions whose DATA ended in the same poll phase share a commit.
    // While writers are concurrent (the last commit had several), the commit also waits gatherMs
    // for more of them: each commit costs two fsyncs and a file's creation and deletion, and a
    // commit that finishes quickly would otherwise leave the next one only the few writers that
    // arrived meanwhile. A lone writer, or one writing after another, never waits.
    if (this.gatherMs > 0 && this.lastBatchSize > 1 && this.pending.length < this.maxItems)
      this.gatherTimer = setTimeout(start, this.gatherMs);
    else setImmediate(start);
  }

  private async run(): Promise<void> {
    if (this.running || this.pending.length === 0) return;
    this.running = true;
    const batch = this.pending.splice(0, this.maxItems);
    this.lastBatchSize = batch.length;
    try {
      await this.commit(batch.map((w) => w.item));
      for (const w of batch) w.resolve();
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}
