// MX host names of recipient domains, for limits that roll destinations up by MX (KumoMTA's
// sites). Looked up once per domain and kept for an hour; a failed lookup counts as no MX hosts
// (the limit then does not match; delivery reports the DNS problem itself).

const TTL_MS = 60 * 60 * 1000;

export class MxSites {
  private readonly resolve: (domain: string) => Promise<string[]>;
  private readonly now: () => number;
  /** Known MX hosts per domain, with the time they were looked up. */
  private readonly known = new Map<string, { hosts: string[]; at: number }>();
  /** Callbacks waiting for a lookup in progress, per domain. */
  private readonly pending = new Map<string, (() => void)[]>();

  constructor(resolve: (domain: string) => Promise<string[]>, now: () => number) {
    this.resolve = resolve;
    this.now = now;
  }

  /** The MX hosts when known and fresh; undefined: call whenResolved. */
  hostsOf(domain: string): string[] | undefined {
    const entry = this.known.get(domain);
    if (!entry || this.now() - entry.at > TTL_MS) return undefined;
    return entry.hosts;
  }

  whenResolved(domain: string, callback: () => void): void {
    const waiting = this.pending.get(domain);
    if (waiting) {
      waiting.push(callback);
      return;
    }
    this.pending.set(domain, [callback]);
    const done = (hosts: string[]) => {
      this.known.set(domain, { hosts, at: this.now() });
      const callbacks = this.pending.get(domain) ?? [];
      this.pending.delete(domain);
      for (const cb of callbacks) cb();
    };
    this.resolve(domain).then(done, () => done([]));
  }
}
