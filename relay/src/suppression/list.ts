// The relay's suppression list: the in-memory table that RCPT TO consults, kept durable by the
// journal on the spool volume. Every change is applied to the table at once (the next RCPT sees
// it) and resolves once journalled. `changed` lets the shared store (shared-state/) carry local
// changes to the other relays of the pool; `applyShared` takes theirs without echoing them back.
import {
  normalizeAddress,
  type SuppressionChange,
  type SuppressionEntry,
  type SuppressionReason,
} from './entry.ts';
import { SuppressionJournal, type LoadResult } from './journal.ts';
import { SuppressionTable } from './table.ts';

export interface SuppressionListOptions {
  file: string;
  now: () => number;
  /** Called after each local change is applied (the shared store publishes it). */
  changed?: (changes: readonly SuppressionChange[]) => void;
}

/** Lines journalled per append while importing (one fsync each). */
const IMPORT_BATCH = 10_000;

export class SuppressionList {
  readonly table = new SuppressionTable();
  private readonly journal: SuppressionJournal;
  private readonly options: SuppressionListOptions;
  /** Changes made since the last compaction, to decide when the journal is worth rewriting. */
  private journalLines = 0;

  constructor(options: SuppressionListOptions) {
    this.options = options;
    this.journal = new SuppressionJournal(options.file);
  }

  get changed(): ((changes: readonly SuppressionChange[]) => void) | undefined {
    return this.options.changed;
  }

  set changed(fn: ((changes: readonly SuppressionChange[]) => void) | undefined) {
    this.options.changed = fn;
  }

  /** Loads the journal, drops expired entries and compacts the file if it is mostly dead lines. */
  async open(): Promise<LoadResult & { entries: number; compacted: boolean }> {
    const loaded = await this.journal.load((c) => this.applyToTable(c));
    const expired = this.table.prune(this.options.now());
    const compacted = loaded.damaged > 0 || expired > 0 || loaded.lines > 2 * this.table.size + 1000;
    if (compacted) await this.journal.rewrite(this.table.entries());
    await this.journal.open();
    this.journalLines = compacted ? this.table.size : loaded.lines;
    return { ...loaded, entries: this.table.size, compacted };
  }

  get size(): number {
    return this.table.size;
  }

  /** Why RCPT TO `recipient` in mail from `sender` is refused, or undefined. */
  check(sender: string, recipient: string): SuppressionReason | undefined {
    if (this.table.size === 0) return undefined;
    // The sender's domain is only cut out when some sending domain has entries of its own.
    const at = this.table.hasDomainScopes ? sender.lastIndexOf('@') : -1;
    const sendingDomain = at < 0 ? '' : sender.slice(at + 1).toLowerCase();
    return this.table.reasonFor(normalizeAddress(recipient), sendingDomain, this.options.now());
  }

  /** Adds (or replaces) entries; resolves once they are durable. */
  add(entries: readonly SuppressionEntry[]): Promise<void> {
    return this.change(entries.map((entry) => ({ op: 'add' as const, entry })));
  }

  /** Removes an entry; false if there was none. Resolves once the removal is durable. */
  async remove(scope: string, address: string): Promise<boolean> {
    const normalized = normalizeAddress(address);
    if (!this.table.get(scope, normalized)) return false;
    await this.change([{ op: 'remove', scope, address: normalized, at: this.options.now() }]);
    return true;
  }

  /** Adds entries in batches (an import of millions); resolves to the number added. */
  async import(entries: Iterable<SuppressionEntry>): Promise<number> {
    let batch: SuppressionEntry[] = [];
    let count = 0;
    for (const entry of entries) {
      batch.push(entry);
      if (batch.length === IMPORT_BATCH) {
        await this.add(batch);
        count += batch.length;
        batch = [];
      }
    }
    await this.add(batch);
    return count + batch.length;
  }

  /** Changes that came from the pool's shared store: applied and journalled, not published again. */
  applyShared(changes: readonly SuppressionChange[]): Promise<void> {
    for (const c of changes) this.applyToTable(c);
    return this.journalled(changes);
  }

  entries(): IterableIterator<SuppressionEntry> {
    return this.table.entries();
  }

  get(scope: string, address: string): SuppressionEntry | undefined {
    return this.table.get(scope, normalizeAddress(address));
  }

  /** Rewrites the journal with the live entries when it holds more than twice as many lines. */
  async compactIfWorthIt(): Promise<boolean> {
    this.table.prune(this.options.now());
    if (this.journalLines <= 2 * this.table.size + 1000) return false;
    this.journalLines = this.table.size;
    await this.journal.rewrite(this.table.entries());
    return true;
  }

  close(): Promise<void> {
    return this.journal.close();
  }

  private change(changes: readonly SuppressionChange[]): Promise<void> {
    if (changes.length === 0) return Promise.resolve();
    for (const c of changes) this.applyToTable(c);
    this.options.changed?.(changes);
    return this.journalled(changes);
  }

  private journalled(changes: readonly SuppressionChange[]): Promise<void> {
    this.journalLines += changes.length;
    return this.journal.append(changes);
  }

  private applyToTable(c: SuppressionChange): void {
    if (c.op === 'add') this.table.set(c.entry);
    else this.table.delete(c.scope, c.address);
  }
}
