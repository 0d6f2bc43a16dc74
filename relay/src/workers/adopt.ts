// Spool shards nobody owns any more: a relay that ran with more workers than it runs now (config
// `workers` lowered, or a limit that lowers the count) left mail in `spool.dir/shard-k` for k at
// or above today's count. Worker 0 (or the single process) takes each such message into its own
// spool at start, as a handoff peer would: stored and fsynced here first, removed there after, so
// a crash in between leaves a copy on both sides, recognised by its id at the next start.
// The shard's events outbox (`<events.dir>-shard-k`) is taken the same way: its unsent events are
// fsynced into worker 0's outbox before they are acknowledged in the shard's, so a crash in between
// sends some twice under their idempotency keys, never loses one.
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Outbox } from '../events/outbox.ts';
import type { MailEvent } from '../events/event.ts';
import { moveBacklog, outboxShardIndexes } from '../handoff/events.ts';
import { Spool } from '../spool/store.ts';
import type { SpoolFs } from '../spool/fs-ops.ts';
import type { Envelope } from '../spool/record.ts';
import type { Logger } from '../../../contract/log.ts';
import { shardIndexes } from './plan.ts';

export interface AdoptDeps {
  spoolDir: string;
  /** Workers running now: shards 1..count-1 are theirs. */
  count: number;
  fs: SpoolFs;
  /** Whether this relay already holds the message (a copy adopted before a crash). */
  holds(id: string): boolean;
  /** Stores (fsynced) and queues a message with the recipient states it had in the shard. */
  store(envelope: Envelope, body: Buffer): Promise<void>;
  log: Logger;
}

/** The shard directories (`shard-k`, k >= `from`) inside a spool directory, with their numbers. */
export async function shardDirs(
  fs: Pick<SpoolFs, 'readdir'>,
  spoolDir: string,
  from = 1,
): Promise<{ index: number; dir: string }[]> {
  const entries = await fs.readdir(spoolDir).catch(() => []);
  return shardIndexes(entries)
    .filter((k) => k >= from)
    .map((index) => ({ index, dir: join(spoolDir, `shard-${index}`) }));
}

/** Takes every message of the shards no worker owns; returns how many were taken. */
export async function adoptOrphanShards(deps: AdoptDeps): Promise<number> {
  let adopted = 0;
  for (const { index, dir } of await shardDirs(deps.fs, deps.spoolDir, deps.count)) {
    const orphan = new Spool({
      dir,
      fs: deps.fs,
      events: {
        quarantined: (queueId, reason) => deps.log('warn', 'spool file quarantined', { queueId, reason }),
      },
    });
    await orphan.open();
    let fromShard = 0;
    for (const { envelope, states } of await orphan.recover()) {
      if (!deps.holds(envelope.id)) {
        const body = await orphan.readBody(envelope.id);
        // Unreadable: readBody quarantined it in the shard, where it stays for an operator.
        if (!body) continue;
        await deps.store({ ...envelope, states: [...states.values()] }, body);
        fromShard++;
      }
      await orphan.remove(envelope.id);
    }
    await orphan.close();
    if (fromShard > 0) deps.log('info', 'spool shard adopted', { shard: index, messages: fromShard });
    adopted += fromShard;
  }
  return adopted;
}

export interface AdoptOutboxDeps {
  /** events.dir of the single-process layout (worker 0's outbox). */
  eventsDir: string;
  count: number;
  /** Fsyncs events into this relay's outbox; rejects when it could not. */
  store(events: MailEvent[]): Promise<void>;
  log: Logger;
}

/** Takes the unsent events of the outboxes no worker owns, then removes them; returns how many. */
export async function adoptOrphanOutboxes(deps: AdoptOutboxDeps): Promise<number> {
  const parent = dirname(deps.eventsDir);
  const base = basename(deps.eventsDir);
  const entries = await readdir(parent).catch(() => [] as string[]);
  let adopted = 0;
  for (const index of outboxShardIndexes(entries, base).filter((k) => k >= deps.count)) {
    const dir = join(parent, `${base}-shard-${index}`);
    const orphan = new Outbox({
      dir,
      // Nothing is written there: the bound never applies.
      maxBytes: Number.MAX_SAFE_INTEGER,
      dropped: () => undefined,
      damaged: (count) => deps.log('warn', 'events outbox lines damaged, skipped', { dir, count }),
    });
    await orphan.open();
    const moved = await moveBacklog(orphan, deps.store);
    await orphan.close();
    await rm(dir, { recursive: true, force: true });
    if (moved > 0) deps.log('info', 'events outbox shard adopted', { shard: index, events: moved });
    adopted += moved;
  }
  return adopted;
}
