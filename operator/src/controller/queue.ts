// The work queue: keys are pools ("namespace/name"). Adding a key that is already waiting does
// nothing; a key being processed is processed again afterwards; a failing key waits with
// per-key exponential backoff; at most `workers` keys are processed at once. With a batch window, a
// key waits that long after its first add, so a burst of changes to one pool (a pool applied
// with its domains and limits, or the watch echoing our own writes) is one reconcile, not one
// per change.
export type QueueOptions = {
  workers: number;
  process: (key: string) => Promise<void>;
  /** Called after a failure; returns the delay before the key is retried. */
  onError: (key: string, error: unknown, attempt: number) => number;
  onDepth?: (depth: number) => void;
  /** How long a newly added key waits for more changes before it is ready (0: at once). */
  batchMs?: number;
};

export class WorkQueue {
  readonly #o: QueueOptions;
  /** Keys ready to be processed, in order. */
  readonly #ready = new Set<string>();
  /** Keys being processed right now. */
  readonly #active = new Set<string>();
  /** Keys added while active: processed again when done. */
  readonly #dirty = new Set<string>();
  /** Failed attempts per key since its last success. */
  readonly #attempts = new Map<string, number>();
  /** Pending delayed adds (backoff after failures). */
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Keys inside their batch window. */
  readonly #batching = new Map<string, NodeJS.Timeout>();
  #stopped = false;
  #idle: (() => void)[] = [];
  /** Holds in force (hold()): while any is, no key is started; keys keep collecting. */
  #holds = 0;

  constructor(o: QueueOptions) {
    this.#o = o;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#active.has(key)) this.#dirty.add(key);
    else if (!this.#ready.has(key) && !this.#batching.has(key)) this.#enqueue(key);
    this.#pump();
  }

  #enqueue(key: string): void {
    const batchMs = this.#o.batchMs ?? 0;
    if (batchMs <= 0) {
      this.#ready.add(key);
      return;
    }
    this.#batching.set(
      key,
      setTimeout(() => {
        this.#batching.delete(key);
        if (this.#stopped) return;
        if (this.#active.has(key)) this.#dirty.add(key);
        else this.#ready.add(key);
        this.#pump();
      }, batchMs),
    );
  }

  addAfter(key: string, ms: number): void {
    if (this.#stopped || this.#timers.has(key)) return;
    this.#timers.set(
      key,
      setTimeout(() => {
        this.#timers.delete(key);
        this.add(key);
      }, ms).unref(),
    );
  }

  /**
   * Starts no new work until the returned release is called (work already running finishes).
   * The controller holds the queue until every informer's cache is filled: a reconcile from a
   * half-filled cache would write a pool with no domains or limits.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      this.#pump();
    };
  }

  get depth(): number {
    return this.#ready.size + this.#active.size + this.#batching.size;
  }

  /** Resolves when nothing is waiting or running (for tests and benchmarks). */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  stop(): void {
    this.#stopped = true;
    for (const t of [...this.#timers.values(), ...this.#batching.values()]) clearTimeout(t);
    this.#timers.clear();
    this.#batching.clear();
    this.#ready.clear();
  }

  #pump(): void {
    this.#o.onDepth?.(this.depth);
    while (
      !this.#stopped &&
      this.#holds === 0 &&
      this.#active.size < this.#o.workers &&
      this.#ready.size > 0
    ) {
      const key = this.#ready.values().next().value as string;
      this.#ready.delete(key);
      this.#active.add(key);
      void this.#work(key);
    }
    if (this.depth === 0) for (const r of this.#idle.splice(0)) r();
  }

  async #work(key: string): Promise<void> {
    try {
      await this.#o.process(key);
      this.#attempts.delete(key);
    } catch (error) {
      const attempt = (this.#attempts.get(key) ?? 0) + 1;
      this.#attempts.set(key, attempt);
      this.addAfter(key, this.#o.onError(key, error, attempt));
    } finally {
      this.#active.delete(key);
      if (this.#dirty.delete(key)) this.#enqueue(key);
      this.#pump();
    }
  }
}
