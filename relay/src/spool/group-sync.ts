// Group commit for directory fsyncs: every caller waits for an fsync that started after its
// request, and all callers that arrive while one fsync runs share the next one. Under load this
// turns N directory fsyncs into about two, whatever N is.

export class GroupSync {
  private readonly syncOnce: () => Promise<void>;
  /** The fsync running now, if any. */
  private running: Promise<void> | undefined;
  /** The fsync queued to start when `running` ends; shared by everyone who asked meanwhile. */
  private next: Promise<void> | undefined;

  constructor(syncOnce: () => Promise<void>) {
    this.syncOnce = syncOnce;
  }

  request(): Promise<void> {
    if (!this.running) {
      this.running = this.start();
      return this.running;
    }
    if (!this.next) {
      const after = this.running.catch(() => undefined);
      this.next = after.then(() => {
        this.next = undefined;
        this.running = this.start();
        return this.running;
      });
    }
    return this.next;
  }

  /** Resolves once no fsync is running or queued. */
  async settled(): Promise<void> {
    while (this.running || this.next) await (this.next ?? this.running)!.catch(() => undefined);
  }

  private async start(): Promise<void> {
    try {
      await this.syncOnce();
    } finally {
      this.running = undefined;
    }
  }
}
