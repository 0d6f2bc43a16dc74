// The suppression list in memory, built for millions of entries: per scope, one Map from address
// to a slot number, and the rest of each entry in typed arrays indexed by slot. An entry costs its
// address string, one Map slot and 18 bytes of arrays, instead of an object with six properties.
// A lookup at RCPT is two Map probes (pool scope, then the sending domain's) with the address
// string as the client sent it: no key is built, so nothing is allocated or hashed anew.
import { POOL_SCOPE, REASONS, SOURCES, type SuppressionEntry, type SuppressionReason } from './entry.ts';

const INITIAL_CAPACITY = 1024;

export class SuppressionTable {
  /** scope -> address -> slot in the arrays below. */
  private readonly byScope = new Map<string, Map<string, number>>();
  /** Entries in all scopes. */
  private count = 0;
  /** Per slot: times in ms (Float64: exact for any epoch millisecond). */
  private addedAt = new Float64Array(INITIAL_CAPACITY);
  private expiresAt = new Float64Array(INITIAL_CAPACITY);
  /** Per slot: index into REASONS and SOURCES. */
  private reason = new Uint8Array(INITIAL_CAPACITY);
  private source = new Uint8Array(INITIAL_CAPACITY);
  /** Per slot: the message id, or undefined (most manual and imported entries have none). */
  private messageId: (string | undefined)[] = [];
  /** Slots freed by deletes, reused before the arrays grow. */
  private readonly free: number[] = [];
  /** Slots ever used (the arrays' high-water mark). */
  private used = 0;

  get size(): number {
    return this.count;
  }

  /** Adds or replaces the entry for its scope and address. */
  set(e: SuppressionEntry): void {
    let slots = this.byScope.get(e.scope);
    if (!slots) this.byScope.set(e.scope, (slots = new Map()));
    let slot = slots.get(e.address);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.grow();
      slots.set(e.address, slot);
      this.count++;
    }
    this.addedAt[slot] = e.addedAt;
    this.expiresAt[slot] = e.expiresAt;
    this.reason[slot] = REASONS.indexOf(e.reason);
    this.source[slot] = SOURCES.indexOf(e.source);
    this.messageId[slot] = e.messageId === '' ? undefined : e.messageId;
  }

  /** Removes the entry; true if there was one. */
  delete(scope: string, address: string): boolean {
    const slots = this.byScope.get(scope);
    const slot = slots?.get(address);
    if (slots === undefined || slot === undefined) return false;
    slots.delete(address);
    if (slots.size === 0) this.byScope.delete(scope);
    this.count--;
    this.messageId[slot] = undefined;
    this.free.push(slot);
    return true;
  }

  /** Whether any sending domain has entries of its own (else only the pool scope is looked at). */
  get hasDomainScopes(): boolean {
    return this.byScope.size > (this.byScope.has(POOL_SCOPE) ? 1 : 0);
  }

  /** Scopes that have entries now. */
  scopes(): string[] {
    return [...this.byScope.keys()];
  }

  get(scope: string, address: string): SuppressionEntry | undefined {
    const slot = this.byScope.get(scope)?.get(address);
    return slot === undefined ? undefined : this.entryAt(scope, address, slot);
  }

  /**
   * Why mail from `sendingDomain` to `address` is refused, or undefined: the pool-wide entry
   * first, then the sending domain's. Expired entries do not count (they are dropped at the next
   * compaction). `address` must be normalised.
   */
  reasonFor(address: string, sendingDomain: string, now: number): SuppressionReason | undefined {
    const pool = this.byScope.get(POOL_SCOPE)?.get(address);
    if (pool !== undefined && this.live(pool, now)) return REASONS[this.reason[pool]!];
    if (sendingDomain === '') return undefined;
    const domain = this.byScope.get(sendingDomain)?.get(address);
    if (domain !== undefined && this.live(domain, now)) return REASONS[this.reason[domain]!];
    return undefined;
  }

  /** Every entry, scope by scope in insertion order (a replaced entry keeps its place). */
  *entries(): IterableIterator<SuppressionEntry> {
    for (const [scope, slots] of this.byScope)
      for (const [address, slot] of slots) yield this.entryAt(scope, address, slot);
  }

  /** Removes expired entries; returns how many. */
  prune(now: number): number {
    let removed = 0;
    for (const [scope, slots] of this.byScope)
      for (const [address, slot] of slots) {
        if (this.live(slot, now)) continue;
        this.delete(scope, address);
        removed++;
      }
    return removed;
  }

  private live(slot: number, now: number): boolean {
    const expires = this.expiresAt[slot]!;
    return expires === 0 || expires > now;
  }

  private entryAt(scope: string, address: string, slot: number): SuppressionEntry {
    return {
      address,
      scope,
      reason: REASONS[this.reason[slot]!]!,
      source: SOURCES[this.source[slot]!]!,
      messageId: this.messageId[slot] ?? '',
      addedAt: this.addedAt[slot]!,
      expiresAt: this.expiresAt[slot]!,
    };
  }

  /** A new slot at the end, doubling the arrays when full. */
  private grow(): number {
    if (this.used === this.addedAt.length) {
      const capacity = this.addedAt.length * 2;
      this.addedAt = resized(this.addedAt, new Float64Array(capacity));
      this.expiresAt = resized(this.expiresAt, new Float64Array(capacity));
      this.reason = resized(this.reason, new Uint8Array(capacity));
      this.source = resized(this.source, new Uint8Array(capacity));
    }
    return this.used++;
  }
}

function resized<T extends Float64Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
