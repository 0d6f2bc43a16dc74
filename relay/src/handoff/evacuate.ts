// One-shot evacuation of a spool nobody runs: `mailfleet relay --config <file> --evacuate`. The
// operator starts it on the claim of a removed StatefulSet relay that may still hold mail
// (docs/operator.md, "Retained queue claims"). It recovers the spool, opens no listener, hands
// every message to the ready relays of the pool through the handoff protocol (the pool's secret,
// its headless Service), and removes a message only once a peer's signed reply says it is fsynced
// there. A kill at any moment leaves at most a message on both sides (a duplicate the receiver
// recognises by id), never a loss. The unsent webhook events of its outbox go the same way
// (handoff/events.ts). Success is an empty spool and outbox.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../../../contract/log.ts';
import { buildMessage, type QueuedMessage } from '../scheduler/model.ts';
import { Spool } from '../spool/store.ts';
import { nodeSpoolFs } from '../spool/fs-ops.ts';
import { durationMs } from '../config/duration.ts';
import type { RuntimeConfig } from '../config/runtime.ts';
import { handOffQueue, type HandoffSummary, type HandoffTarget } from './sender.ts';
import { shardDirs } from '../workers/adopt.ts';
import { EVACUATE_EXIT } from '../../../contract/layout.ts';
import { Outbox } from '../events/outbox.ts';
import {
  evacuationExitCode,
  handOffEvents,
  outboxShardIndexes,
  type EventsHandoffSummary,
} from './events.ts';

/** With no ready peer (or one refusing), the pool is looked up again this often. */
const PEER_RETRY_MS = 2000;

export interface EvacuationDeps {
  spool: Pick<Spool, 'recover' | 'readBody' | 'remove'>;
  secret: Buffer;
  target: HandoffTarget;
  log: Logger;
  now(): number;
  /** Stop handing off (SIGTERM): checked between passes; a batch in flight completes. */
  stopped?(): boolean;
}

export interface EvacuationSummary {
  /** Messages found in the spool. */
  recovered: number;
  /** Found with every recipient final already (finished before the crash): removed, as a relay's start does. */
  finished: number;
  /** Acknowledged by a peer (stored there, or already held: `duplicates`). */
  handedOff: number;
  duplicates: number;
  /** Undecodable: moved to the spool's quarantine/ (as a relay does), not handed off. */
  quarantined: number;
  /** Still in the spool: no peer took them before the deadline. */
  left: number;
}

/** Hands the whole spool to the pool's ready relays, or as much as they take before `deadline`. */
export async function evacuateSpool(deps: EvacuationDeps, deadline: number): Promise<EvacuationSummary> {
  const recovered = await deps.spool.recover();
  const now = deps.now();
  const queue = new Map<string, QueuedMessage>();
  let finished = 0;
  let quarantined = 0;
  for (const r of recovered) {
    const message = buildMessage(r.envelope, r.states, (domain) => domain, now);
    if (message.jobs.size === 0) {
      await deps.spool.remove(r.envelope.id);
      finished++;
    } else queue.set(r.envelope.id, message);
  }
  deps.log('info', 'evacuation started', { messages: queue.size, finished });
  // One id for this process: a peer answering with it would be this evacuation (never itself).
  const instance = `evacuate-${randomBytes(6).toString('hex')}`;
  const total: HandoffSummary = { peers: 0, sent: 0, duplicates: 0, left: queue.size };
  while (queue.size > 0 && deps.now() < deadline && !deps.stopped?.()) {
    const pass = await handOffQueue(
      {
        instance,
        secret: deps.secret,
        target: deps.target,
        messages: () => queue.values(),
        readBody: async (id) => {
          const body = await deps.spool.readBody(id);
          // Undecodable: the spool quarantined it (counted, kept in quarantine/), nothing to send.
          if (!body && queue.delete(id)) quarantined++;
          return body;
        },
        handedOff: async (message) => {
          // Acknowledged (fsynced) by the peer. A kill before this removal sends it again next
          // run, and the peer answers `duplicate`.
          await deps.spool.remove(message.envelope.id);
          queue.delete(message.envelope.id);
        },
        log: deps.log,
        now: deps.now,
      },
      deadline,
    );
    total.peers = Math.max(total.peers, pass.peers);
    total.sent += pass.sent;
    total.duplicates += pass.duplicates;
    deps.log('info', 'evacuation pass', { ...pass });
    if (queue.size > 0 && pass.sent === 0)
      await new Promise((resolve) => setTimeout(resolve, Math.min(PEER_RETRY_MS, deadline - deps.now())));
  }
  const summary = {
    recovered: recovered.length,
    finished,
    handedOff: total.sent,
    duplicates: total.duplicates,
    quarantined,
    left: queue.size,
  };
  deps.log(summary.left === 0 ? 'info' : 'warn', 'evacuation finished', { ...summary });
  return summary;
}

export interface OutboxEvacuationDeps {
  /** The outbox directory (events.dir, or a worker's `<events.dir>-shard-<k>`). */
  dir: string;
  secret: Buffer;
  target: HandoffTarget;
  log: Logger;
  now(): number;
  stopped?(): boolean;
}

/**
 * Hands the unacknowledged events of an outbox nobody runs to the pool's ready relays. With no
 * ready peer the pool is asked again until `deadline`; when every peer refuses because it writes
 * no events, the events stay (`unwanted`).
 */
export async function evacuateOutbox(
  deps: OutboxEvacuationDeps,
  deadline: number,
): Promise<{ left: number; sent: number; unwanted: boolean }> {
  const present = await readdir(deps.dir).catch(() => undefined);
  if (!present) return { left: 0, sent: 0, unwanted: false };
  const outbox = new Outbox({
    dir: deps.dir,
    // Nothing is written here: the bound never applies.
    maxBytes: Number.MAX_SAFE_INTEGER,
    dropped: () => undefined,
    damaged: (count) => deps.log('warn', 'events outbox lines damaged, skipped', { dir: deps.dir, count }),
  });
  await outbox.open();
  const instance = `evacuate-${randomBytes(6).toString('hex')}`;
  let sent = 0;
  let last: EventsHandoffSummary | undefined;
  while (outbox.unsent > 0 && deps.now() < deadline && !deps.stopped?.()) {
    last = await handOffEvents({ ...deps, instance }, outbox, deadline);
    sent += last.sent;
    if (last.peers > 0 && last.withoutOutbox === last.peers) break;
    if (outbox.unsent > 0 && last.sent === 0)
      await new Promise((resolve) => setTimeout(resolve, Math.min(PEER_RETRY_MS, deadline - deps.now())));
  }
  await outbox.close();
  const left = outbox.unsent;
  const unwanted = left > 0 && last !== undefined && last.peers > 0 && last.withoutOutbox === last.peers;
  deps.log(left === 0 ? 'info' : 'warn', 'events evacuation finished', {
    dir: deps.dir,
    sent,
    left,
    unwanted,
  });
  return { left, sent, unwanted };
}

/** The outbox directories a relay (and its worker processes) left: events.dir and its shards. */
async function outboxDirs(eventsDir: string): Promise<string[]> {
  const parent = dirname(eventsDir);
  const entries = await readdir(parent).catch(() => [] as string[]);
  const base = basename(eventsDir);
  return [eventsDir, ...outboxShardIndexes(entries, base).map((k) => join(parent, `${base}-shard-${k}`))];
}

/**
 * The `--evacuate` run: the spool of `runtime`'s config handed to the relays its `handoff` names,
 * with the unsent events of its outbox, within drainTimeout (or until SIGTERM). Exit code
 * (evacuationExitCode) 0 only when the spool is empty and so is the outbox (unless no relay of the
 * pool writes events); 1 leaves the rest for the next run (the operator's Job retries); 2
 * (EVACUATE_EXIT) when the config has no handoff target and 3 when the spool cannot be opened or
 * read: both permanent for this pod (the Job fails at once; the operator remakes it with a backoff).
 */
export async function runEvacuation(
  runtime: Pick<RuntimeConfig, 'config' | 'handoffSecret'>,
  log: Logger,
): Promise<number> {
  const { config, handoffSecret } = runtime;
  if (!config.handoff || !handoffSecret) {
    log('error', 'evacuation needs handoff (a Service or peers) and its secret in the config', {});
    return EVACUATE_EXIT.NoHandoffTarget;
  }
  const target: HandoffTarget = {
    port: config.handoff.port,
    peers: config.handoff.peers,
    dnsServers: config.handoff.dnsServers,
  };
  if (config.handoff.service) target.service = config.handoff.service;
  let stopped = false;
  const stop = () => {
    stopped = true;
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const deadline = Date.now() + durationMs(config.drainTimeout);
  // A relay that ran worker processes left a spool shard per worker (relay/src/workers/).
  let left = 0;
  try {
    const dirs = [config.spool.dir, ...(await shardDirs(nodeSpoolFs, config.spool.dir)).map((s) => s.dir)];
    for (const dir of dirs) {
      const spool = new Spool({
        dir,
        fs: nodeSpoolFs,
        events: {
          quarantined: (queueId, reason) => log('warn', 'spool file quarantined', { queueId, reason }),
        },
      });
      await spool.open();
      try {
        const summary = await evacuateSpool(
          { spool, secret: handoffSecret, target, log, now: Date.now, stopped: () => stopped },
          deadline,
        );
        left += summary.left;
      } finally {
        await spool.close();
      }
    }
  } catch (error) {
    // Only the spool's own file system throws here (handoff failures are retried inside): a
    // volume that is not a spool, or that this user cannot read, fails every run alike.
    const { code, message } = error as NodeJS.ErrnoException;
    log('error', 'spool unreadable: nothing evacuated', { dir: config.spool.dir, code, message });
    return EVACUATE_EXIT.SpoolUnreadable;
  }
  // The webhook events the relay had not sent go to the pool too (they would stay on the claim).
  const events = { left: 0, unwanted: true };
  for (const dir of await outboxDirs(config.events?.dir ?? join(config.spool.dir, 'events'))) {
    const result = await evacuateOutbox(
      { dir, secret: handoffSecret, target, log, now: Date.now, stopped: () => stopped },
      deadline,
    );
    events.left += result.left;
    if (result.left > 0 && !result.unwanted) events.unwanted = false;
  }
  return evacuationExitCode({ messages: left, events: events.left, eventsUnwanted: events.unwanted });
}
