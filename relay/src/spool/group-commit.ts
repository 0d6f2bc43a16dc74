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
  /** True once a commit is scheduled for the next turn of the event loop. */
  private scheduled = false;

  /**
   * `commit` makes all its items durable or throws; every waiter of that batch gets its outcome.
   * `maxItems` bounds a batch (a huge batch would hold the first writer's 250 back).
   */
  constructor(commit: (items: T[]) => Promise<void>, options: { maxItems: number }) {
    this.commit = commit;
    this.maxItems = options.maxItems;
  }

  /** Resolves when `item` is durable; rejects when its batch failed (nothing of it is kept). */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    // One turn of the event loop: sessions whose DATA ended in the same poll phase share a commit.
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running || this.pending.length === 0) return;
    this.running = true;
    const batch = this.pending.splice(0, this.maxItems);
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
