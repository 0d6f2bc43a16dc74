// The suppression list shared by the relays of a pool through Valkey/Redis. The store holds the
// list as a hash (field: scope and address, value: the entry's journal line) and every change as
// an entry of a stream; each relay keeps its own full copy (RCPT never waits for the network),
// publishes its changes to the store and follows the stream for the others'.
//
// Store down: mail keeps flowing on the local copy. Local changes go to a durable outbox (the
// journal format, next to the list's journal on the spool volume) and are published, in order,
// once the store answers again; meanwhile the stream keeps the other relays' changes, read from
// where this relay left off. The first connection (no position yet) loads the whole hash.
import type { Redis } from 'ioredis';
import { decodeChange, encodeChange, type SuppressionChange } from '../suppression/entry.ts';
import { SuppressionJournal } from '../suppression/journal.ts';
import type { SuppressionList } from '../suppression/list.ts';

export interface SuppressionSyncOptions {
  list: SuppressionList;
  /** Commands (may fail fast while the store is down). */
  redis: Redis;
  /** A second connection for the blocking stream read. */
  reader: Redis;
  keyPrefix: string;
  /** This relay, so its own changes are not applied twice when they come back on the stream. */
  instance: string;
  outboxFile: string;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
  /** A store operation failed (counted by operation). */
  failed: (operation: 'publish' | 'load' | 'follow') => void;
}

/** Stream length kept by the store: a relay away for longer than this many changes reloads the hash. */
const STREAM_MAX = 1_000_000;
const SCAN_COUNT = 10_000;

export class SuppressionSync {
  private readonly o: SuppressionSyncOptions;
  private readonly outbox: SuppressionJournal;
  /** Changes waiting in the outbox (published once the store answers). */
  pending = 0;
  /** Stream id of the last change read; undefined until the first full load. */
  private cursor: string | undefined;
  private stopped = false;
  /** The follow loop, while it runs. */
  private following: Promise<void> | undefined;
  /** The catch-up running now (both connections announce themselves; one load is enough). */
  private catching: Promise<void> | undefined;
  /** Serialises publishing and outbox flushing, so changes reach the store in order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(options: SuppressionSyncOptions) {
    this.o = options;
    this.outbox = new SuppressionJournal(options.outboxFile);
  }

  private get hashKey(): string {
    return `${this.o.keyPrefix}suppression`;
  }

  private get streamKey(): string {
    return `${this.o.keyPrefix}suppression:changes`;
  }

  async open(): Promise<void> {
    await this.outbox.load(() => this.pending++);
    await this.outbox.open();
  }

  /** Local changes: to the store now, or to the outbox if it does not answer. */
  publish(changes: readonly SuppressionChange[]): Promise<void> {
    const run = this.chain.then(async () => {
      try {
        // Whatever waits in the outbox goes first: the store sees the changes in order.
        await this.flushOutbox();
        await this.write(changes);
        return;
      } catch (err) {
        this.o.failed('publish');
        this.o.log('warn', 'shared store unavailable, suppression change kept in the outbox', {
          err: String(err),
        });
      }
      await this.outbox.append(changes);
      this.pending += changes.length;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The store answers (again): flush the outbox, catch up, follow. */
  connected(): void {
    this.chain = this.chain.then(() => this.flushOutbox()).catch(() => undefined);
    this.catching ??= this.chain.then(() => this.catchUp()).finally(() => (this.catching = undefined));
  }

  private async flushOutbox(): Promise<void> {
    if (this.pending === 0) return;
    const changes: SuppressionChange[] = [];
    await this.outbox.load((c) => changes.push(c));
    for (let i = 0; i < changes.length; i += 1000) await this.write(changes.slice(i, i + 1000));
    await this.outbox.rewrite([]);
    this.o.log('info', 'suppression outbox published to the shared store', { changes: changes.length });
    this.pending = 0;
  }

  private async write(changes: readonly SuppressionChange[]): Promise<void> {
    const tx = this.o.redis.multi();
    for (const c of changes) {
      const field = `${c.op === 'add' ? c.entry.scope : c.scope}\n${c.op === 'add' ? c.entry.address : c.address}`;
      if (c.op === 'add') tx.hset(this.hashKey, field, encodeChange(c));
      else tx.hdel(this.hashKey, field);
      tx.xadd(this.streamKey, 'MAXLEN', '~', STREAM_MAX, '*', 'o', this.o.instance, 'c', encodeChange(c));
    }
    const results = await tx.exec();
    const error = results?.find(([err]) => err)?.[0];
    if (!results || error) throw error ?? new Error('transaction discarded');
  }

  /** Loads the whole list if this relay has no stream position yet, then follows the stream. */
  private async catchUp(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.cursor === undefined) {
        // The stream position is taken before the scan, so a change made during it is read after.
        const last = await this.o.redis.xrevrange(this.streamKey, '+', '-', 'COUNT', 1);
        const cursor = last[0]?.[0] ?? '0-0';
        let scan = '0';
        let loaded = 0;
        do {
          const [next, flat] = await this.o.redis.hscan(this.hashKey, scan, 'COUNT', SCAN_COUNT);
          scan = next;
          const changes: SuppressionChange[] = [];
          for (let i = 1; i < flat.length; i += 2) {
            const c = decodeChange(flat[i]!);
            if (c) changes.push(c);
          }
          await this.o.list.applyShared(changes);
          loaded += changes.length;
        } while (scan !== '0');
        this.cursor = cursor;
        this.o.log('info', 'suppression list loaded from the shared store', { entries: loaded });
      }
    } catch (err) {
      this.o.failed('load');
      this.o.log('warn', 'suppression list not loaded from the shared store', { err: String(err) });
      return;
    }
    this.following ??= this.follow().finally(() => (this.following = undefined));
  }

  /** Reads the stream from the cursor until stopped or the store goes away. */
  private async follow(): Promise<void> {
    while (!this.stopped && this.cursor !== undefined) {
      let batches: [string, [string, string[]][]][] | null;
      try {
        batches = (await this.o.reader.xread(
          'COUNT',
          1000,
          'BLOCK',
          2000,
          'STREAMS',
          this.streamKey,
          this.cursor,
        )) as [string, [string, string[]][]][] | null;
      } catch (err) {
        if (!this.stopped) {
          this.o.failed('follow');
          this.o.log('warn', 'shared store stream read failed', { err: String(err) });
        }
        return;
      }
      for (const [, entries] of batches ?? []) {
        const changes: SuppressionChange[] = [];
        for (const [id, fields] of entries) {
          this.cursor = id;
          const origin = fields[fields.indexOf('o') + 1];
          const c = decodeChange(fields[fields.indexOf('c') + 1] ?? '');
          if (c && origin !== this.o.instance) changes.push(c);
        }
        if (changes.length > 0) await this.o.list.applyShared(changes);
      }
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.chain;
    await this.following?.catch(() => undefined);
    await this.outbox.close();
  }
}
