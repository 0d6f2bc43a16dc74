// Pure decisions of the worker processes (config `workers`): how many can run, and the config each
// one runs with. Every limit a relay enforces alone is split between its workers so that their sum
// is the configured limit (a worker never learns what its siblings admitted); a limit too small to
// give each worker at least one lowers the count instead of being multiplied by it, at start and
// on a reload (the primary retires the workers above the new count, see `resize`).
import { join } from 'node:path';
import type { RelayConfig } from '../config/types.ts';

/** One worker of `count`: it owns spool shard `index` (0 is the spool directory itself). */
export interface WorkerSlot {
  index: number;
  count: number;
}

export interface WorkerCount {
  count: number;
  /** The limit that lowered the count below `workers`; undefined when it did not. */
  cappedBy?: string;
}

/** The integer limits each worker enforces on its own, by name (a config path). */
function splitLimits(config: RelayConfig): [string, number][] {
  const named: [string, number][] = [
    ['limits.maxConnections', config.limits.maxConnections],
    ['limits.maxConnectionsPerClient', config.limits.maxConnectionsPerClient],
    ['auth.throttle.maxFailures', config.auth.throttle.maxFailures],
    ['delivery.maxConnections', config.delivery.maxConnections],
    ['delivery.maxConnectionsPerDestination', config.delivery.maxConnectionsPerDestination],
  ];
  for (const l of config.rateLimits) {
    const share = l.share ?? 1;
    // shaping/plan.ts rounds these down, then raises them to 1: a worker's share below 1 would
    // be raised, so the count may not exceed the shared value.
    if (l.rate) named.push([`rateLimits[${l.name}].burst`, Math.floor(l.burst * share)]);
    if (l.maxConnections !== undefined)
      named.push([`rateLimits[${l.name}].maxConnections`, Math.floor(l.maxConnections * share)]);
  }
  return named;
}

/** The workers a config may run: `workers`, lowered to the smallest split limit. */
export function workerCount(config: RelayConfig): WorkerCount {
  let count = config.workers;
  let cappedBy: string | undefined;
  for (const [name, value] of splitLimits(config)) {
    const most = Math.max(1, value);
    if (most < count) {
      count = most;
      cappedBy = name;
    }
  }
  return cappedBy === undefined ? { count } : { count, cappedBy };
}

/** What the primary does when a reload changes the workers a config allows. */
export interface Resize {
  /** Workers running once it is done. */
  count: number;
  /** Workers that stop (highest first); their shards are adopted by worker 0 once they exited. */
  retire: number[];
  /** Workers forked again (a limit raised back); never more than the relay started with. */
  fork: number[];
}

/**
 * From `running` workers to what `config` allows, never above `started` (the slots the primary
 * made at start): a reloaded limit smaller than the count retires workers instead of giving each
 * one at least one (which multiplied the limit by the count until a restart).
 */
export function resize(running: number, started: number, config: RelayConfig): Resize {
  const count = Math.min(started, workerCount(config).count);
  const range = (from: number, to: number) =>
    Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
  return { count, retire: range(count, running).reverse(), fork: range(running, count) };
}

/** Worker `index`'s part of `value`: the parts of all workers add up to `value`. */
export function splitOf(value: number, slot: WorkerSlot): number {
  return Math.floor(value / slot.count) + (slot.index < value % slot.count ? 1 : 0);
}

/** Where worker `index` keeps a file or directory of the single-process layout at `path`. */
export function shardPath(path: string, index: number): string {
  return index === 0 ? path : `${path}-shard-${index}`;
}

/** The spool shard directory of worker `index`. */
function spoolShard(spoolDir: string, index: number): string {
  return index === 0 ? spoolDir : join(spoolDir, `shard-${index}`);
}

/** Shard numbers found among a spool directory's entries (`shard-<k>`). */
export function shardIndexes(entries: readonly string[]): number[] {
  return entries
    .map((name) => /^shard-([1-9][0-9]*)$/.exec(name)?.[1])
    .filter((k): k is string => k !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * The config worker `slot.index` runs: its own spool shard, suppression journal and events outbox,
 * and its part of every limit. With one worker it is the config itself.
 */
export function workerConfig(config: RelayConfig, slot: WorkerSlot): RelayConfig {
  if (slot.count === 1) return config;
  // The primary keeps the count at or below every limit (`resize`), so each part is at least one,
  // except in a retiring worker between its reload and its exit, which may get none: the sum stays
  // the limit.
  const split = (value: number) => splitOf(value, slot);
  const out: RelayConfig = {
    ...config,
    limits: {
      ...config.limits,
      maxConnections: split(config.limits.maxConnections),
      maxConnectionsPerClient: split(config.limits.maxConnectionsPerClient),
    },
    auth: {
      ...config.auth,
      throttle: { ...config.auth.throttle, maxFailures: split(config.auth.throttle.maxFailures) },
    },
    delivery: {
      ...config.delivery,
      maxConnections: split(config.delivery.maxConnections),
      maxConnectionsPerDestination: split(config.delivery.maxConnectionsPerDestination),
    },
    // The rate is divided exactly (shaping stretches the period); burst and connections round down.
    rateLimits: config.rateLimits.map((l) => ({ ...l, share: (l.share ?? 1) / slot.count })),
    spool: {
      ...config.spool,
      dir: spoolShard(config.spool.dir, slot.index),
      maxBytes: config.spool.maxBytes === 0 ? 0 : splitOf(config.spool.maxBytes, slot),
    },
    suppression: { ...config.suppression, file: shardPath(config.suppression.file, slot.index) },
  };
  if (config.events) out.events = { ...config.events, dir: shardPath(config.events.dir, slot.index) };
  return out;
}
