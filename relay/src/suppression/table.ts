// The suppression list in memory, built for millions of entries and kept off the JavaScript heap:
// addresses and message ids are bytes in one arena Buffer, each entry's other fields are slots in
// typed arrays, and an open-addressing hash index (linear probing) maps (scope, address) to the
// entry. The garbage collector sees a dozen objects whatever the size of the list, where a Map of
// a million address strings made every major collection mark a million objects (and cost the
// relay a third of its throughput, bench/suppression/RESULTS.md). A lookup at RCPT hashes the
// address string as the client sent it and compares bytes: nothing is allocated.
import { POOL_SCOPE, REASONS, SOURCES, type SuppressionEntry, type SuppressionReason } from './entry.ts';

const INITIAL_ENTRIES = 1024;
/** Scope id of a free entry slot. */
const FREE = 0xffff;
/** Index cell values: 0 empty, -1 a deleted entry's tombstone, n > 0 entry n - 1. */
const TOMBSTONE = -1;

export class SuppressionTable {
  /** Scope name <-> small id (the pool's `*` and the sending domains: few). */
  private readonly scopeIds = new Map<string, number>();
  private readonly scopeNames: string[] = [];
  /** Live entries per scope id. */
  private readonly perScope: number[] = [];
  /** Address and message id bytes (UTF-8) of every entry, dead ones until the next compaction. */
  private arena = Buffer.allocUnsafe(64 * 1024);
  private arenaUsed = 0;
  /** Arena bytes of deleted or replaced entries. */
  private arenaGarbage = 0;
  // Per entry slot:
  private hash = new Uint32Array(INITIAL_ENTRIES);
  private scope = new Uint16Array(INITIAL_ENTRIES).fill(FREE);
  private keyStart = new Uint32Array(INITIAL_ENTRIES);
  private keyLength = new Uint16Array(INITIAL_ENTRIES);
  private idStart = new Uint32Array(INITIAL_ENTRIES);
  private idLength = new Uint16Array(INITIAL_ENTRIES);
  private addedAt = new Float64Array(INITIAL_ENTRIES);
  private expiresAt = new Float64Array(INITIAL_ENTRIES);
  private reason = new Uint8Array(INITIAL_ENTRIES);
  private source = new Uint8Array(INITIAL_ENTRIES);
  /** Entry slots freed by deletes, reused before the arrays grow. */
  private readonly free: number[] = [];
  /** Entry slots ever used (the arrays' high-water mark). */
  private used = 0;
  /** The hash index: a power of two, at most half full (live entries and tombstones). */
  private index = new Int32Array(INITIAL_ENTRIES * 2);
  private tombstones = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Whether any sending domain has entries of its own (else only the pool scope is looked at). */
  get hasDomainScopes(): boolean {
    const pool = this.scopeIds.get(POOL_SCOPE);
    return this.perScope.some((n, id) => n > 0 && id !== pool);
  }

  /** Scopes that have entries now. */
  scopes(): string[] {
    return this.scopeNames.filter((_, id) => (this.perScope[id] ?? 0) > 0);
  }

  /** Adds or replaces the entry for its scope and address. */
  set(e: SuppressionEntry): void {
    const scopeId = this.scopeIdOf(e.scope, true);
    const h = hashOf(scopeId, e.address);
    let slot = this.find(scopeId, e.address, h);
    if (slot < 0) {
      slot = this.free.pop() ?? this.grow();
      this.hash[slot] = h;
      this.scope[slot] = scopeId;
      [this.keyStart[slot], this.keyLength[slot]] = this.store(e.address);
      this.insertIndex(slot, h);
      this.count++;
      this.perScope[scopeId] = (this.perScope[scopeId] ?? 0) + 1;
    } else {
      this.arenaGarbage += this.idLength[slot]!;
    }
    [this.idStart[slot], this.idLength[slot]] = this.store(e.messageId);
    this.addedAt[slot] = e.addedAt;
    this.expiresAt[slot] = e.expiresAt;
    this.reason[slot] = REASONS.indexOf(e.reason);
    this.source[slot] = SOURCES.indexOf(e.source);
    if (this.arenaGarbage > 1024 * 1024 && this.arenaGarbage * 2 > this.arenaUsed) this.compactArena();
  }

  /** Removes the entry; true if there was one. */
  delete(scope: string, address: string): boolean {
    const scopeId = this.scopeIdOf(scope, false);
    if (scopeId < 0) return false;
    const h = hashOf(scopeId, address);
    const cell = this.findCell(scopeId, address, h);
    if (cell < 0) return false;
    const slot = this.index[cell]! - 1;
    this.index[cell] = TOMBSTONE;
    this.tombstones++;
    this.scope[slot] = FREE;
    this.arenaGarbage += this.keyLength[slot]! + this.idLength[slot]!;
    this.free.push(slot);
    this.count--;
    this.perScope[scopeId]!--;
    return true;
  }

  get(scope: string, address: string): SuppressionEntry | undefined {
    const scopeId = this.scopeIdOf(scope, false);
    if (scopeId < 0) return undefined;
    const slot = this.find(scopeId, address, hashOf(scopeId, address));
    return slot < 0 ? undefined : this.entryAt(slot);
  }

  /**
   * Why mail from `sendingDomain` to `address` is refused, or undefined: the pool-wide entry
   * first, then the sending domain's. Expired entries do not count (they are dropped at the next
   * compaction). `address` must be normalised.
   */
  reasonFor(address: string, sendingDomain: string, now: number): SuppressionReason | undefined {
    const pool = this.scopeIds.get(POOL_SCOPE);
    if (pool !== undefined) {
      const slot = this.find(pool, address, hashOf(pool, address));
      if (slot >= 0 && this.live(slot, now)) return REASONS[this.reason[slot]!];
    }
    if (sendingDomain === '') return undefined;
    const domain = this.scopeIds.get(sendingDomain);
    if (domain === undefined) return undefined;
    const slot = this.find(domain, address, hashOf(domain, address));
    return slot >= 0 && this.live(slot, now) ? REASONS[this.reason[slot]!] : undefined;
  }

  /** Every entry, in slot order. */
  *entries(): IterableIterator<SuppressionEntry> {
    for (let slot = 0; slot < this.used; slot++) if (this.scope[slot] !== FREE) yield this.entryAt(slot);
  }

  /** Removes expired entries; returns how many. */
  prune(now: number): number {
    let removed = 0;
    for (let slot = 0; slot < this.used; slot++) {
      if (this.scope[slot] === FREE || this.live(slot, now)) continue;
      this.delete(
        this.scopeNames[this.scope[slot]!]!,
        this.text(this.keyStart[slot]!, this.keyLength[slot]!),
      );
      removed++;
    }
    return removed;
  }

  private live(slot: number, now: number): boolean {
    const expires = this.expiresAt[slot]!;
    return expires === 0 || expires > now;
  }

  private scopeIdOf(scope: string, create: boolean): number {
    const id = this.scopeIds.get(scope);
    if (id !== undefined || !create) return id ?? -1;
    this.scopeIds.set(scope, this.scopeNames.length);
    this.scopeNames.push(scope);
    return this.scopeNames.length - 1;
  }

  /** The entry slot for (scope, address), or -1. */
  private find(scopeId: number, address: string, h: number): number {
    const cell = this.findCell(scopeId, address, h);
    return cell < 0 ? -1 : this.index[cell]! - 1;
  }

  /** The index cell holding (scope, address), or -1. */
  private findCell(scopeId: number, address: string, h: number): number {
    const mask = this.index.length - 1;
    for (let cell = h & mask; ; cell = (cell + 1) & mask) {
      const v = this.index[cell]!;
      if (v === 0) return -1;
      if (v > 0) {
        const slot = v - 1;
        if (this.hash[slot] === h && this.scope[slot] === scopeId && this.keyEquals(slot, address))
          return cell;
      }
    }
  }

  /** Compares the stored UTF-8 key with a JavaScript string without decoding it. */
  private keyEquals(slot: number, address: string): boolean {
    const start = this.keyStart[slot]!;
    const length = this.keyLength[slot]!;
    if (length === address.length) {
      for (let i = 0; i < length; i++) {
        const c = address.charCodeAt(i);
        if (c > 127) return this.text(start, length) === address;
        if (this.arena[start + i] !== c) return false;
      }
      return true;
    }
    // Lengths differ: equal only if the address has multi-byte characters (SMTPUTF8).
    return length > address.length && this.text(start, length) === address;
  }

  private insertIndex(slot: number, h: number): void {
    if ((this.count + this.tombstones + 1) * 2 > this.index.length) this.rebuildIndex(this.index.length * 2);
    const mask = this.index.length - 1;
    let cell = h & mask;
    while (this.index[cell]! > 0) cell = (cell + 1) & mask;
    if (this.index[cell] === TOMBSTONE) this.tombstones--;
    this.index[cell] = slot + 1;
  }

  /** A fresh index without tombstones, sized for the live entries. */
  private rebuildIndex(size: number): void {
    let capacity = size;
    while (capacity < (this.count + 1) * 4) capacity *= 2;
    this.index = new Int32Array(capacity);
    this.tombstones = 0;
    const mask = capacity - 1;
    for (let slot = 0; slot < this.used; slot++) {
      if (this.scope[slot] === FREE) continue;
      let cell = this.hash[slot]! & mask;
      while (this.index[cell] !== 0) cell = (cell + 1) & mask;
      this.index[cell] = slot + 1;
    }
  }

  /** Writes text into the arena; returns [start, byte length]. */
  private store(text: string): [number, number] {
    if (text === '') return [0, 0];
    const room = text.length * 3;
    if (this.arenaUsed + room > this.arena.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaUsed + room));
      this.arena.copy(bigger, 0, 0, this.arenaUsed);
      this.arena = bigger;
    }
    const start = this.arenaUsed;
    const written = this.arena.write(text, start, 'utf8');
    this.arenaUsed += written;
    return [start, written];
  }

  private text(start: number, length: number): string {
    return length === 0 ? '' : this.arena.toString('utf8', start, start + length);
  }

  /** Copies the live entries' bytes into a new arena, dropping the dead ones. */
  private compactArena(): void {
    const arena = Buffer.allocUnsafe(Math.max(64 * 1024, (this.arenaUsed - this.arenaGarbage) * 2));
    let used = 0;
    const move = (start: number, length: number): number => {
      this.arena.copy(arena, used, start, start + length);
      used += length;
      return used - length;
    };
    for (let slot = 0; slot < this.used; slot++) {
      if (this.scope[slot] === FREE) continue;
      this.keyStart[slot] = move(this.keyStart[slot]!, this.keyLength[slot]!);
      this.idStart[slot] = move(this.idStart[slot]!, this.idLength[slot]!);
    }
    this.arena = arena;
    this.arenaUsed = used;
    this.arenaGarbage = 0;
  }

  private entryAt(slot: number): SuppressionEntry {
    return {
      address: this.text(this.keyStart[slot]!, this.keyLength[slot]!),
      scope: this.scopeNames[this.scope[slot]!]!,
      reason: REASONS[this.reason[slot]!]!,
      source: SOURCES[this.source[slot]!]!,
      messageId: this.text(this.idStart[slot]!, this.idLength[slot]!),
      addedAt: this.addedAt[slot]!,
      expiresAt: this.expiresAt[slot]!,
    };
  }

  /** A new entry slot at the end, doubling the arrays when full. */
  private grow(): number {
    if (this.used === this.hash.length) {
      const n = this.hash.length * 2;
      this.hash = resized(this.hash, new Uint32Array(n));
      this.scope = resized(this.scope, new Uint16Array(n).fill(FREE));
      this.keyStart = resized(this.keyStart, new Uint32Array(n));
      this.keyLength = resized(this.keyLength, new Uint16Array(n));
      this.idStart = resized(this.idStart, new Uint32Array(n));
      this.idLength = resized(this.idLength, new Uint16Array(n));
      this.addedAt = resized(this.addedAt, new Float64Array(n));
      this.expiresAt = resized(this.expiresAt, new Float64Array(n));
      this.reason = resized(this.reason, new Uint8Array(n));
      this.source = resized(this.source, new Uint8Array(n));
    }
    return this.used++;
  }
}

/** FNV-1a over the scope id and the string's UTF-16 code units. */
function hashOf(scopeId: number, text: string): number {
  let h = Math.imul(0x811c9dc5 ^ scopeId, 0x01000193);
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function resized<T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
