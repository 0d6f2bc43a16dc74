// Spool shards nobody owns any more: a relay that ran with more workers than it runs now (config
// `workers` lowered, or a limit that lowers the count) left mail in `spool.dir/shard-k` for k at
// or above today's count. Worker 0 (or the single process) takes each such message into its own
// spool at start, as a handoff peer would: stored and fsynced here first, removed there after, so
// a crash in between leaves a copy on both sides, recognised by its id at the next start.
import { join } from 'node:path';
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
