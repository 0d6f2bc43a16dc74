// The events outbox goes with the queue: a draining relay (or `relay --evacuate`, or worker 0
// taking over a removed worker's shard) hands the webhook events its receiver has not
// acknowledged yet to a ready peer of the pool, which fsyncs them into its own outbox and sends
// them. The same rule as for mail: the sender moves its acknowledged position past a batch only
// after the peer's signed reply says the batch is fsynced there, so a kill at any moment leaves
// at most a second copy (sent again under the same idempotency key, which the receiver drops).
import type { Position } from '../events/in-flight.ts';
import { encodeEvent } from '../events/codec.ts';
import type { MailEvent } from '../events/event.ts';
import { parseEventsReply } from './codec.ts';
import { readyPeers, type Peer } from './plan.ts';
import { call, probePeers, type HandoffTarget } from './sender.ts';
import { EVENTS_PATH } from './server.ts';

/** Events per request: a few hundred bytes each, so a request stays well under a megabyte. */
const BATCH_EVENTS = 1000;
const REQUEST_TIMEOUT_MS = 30_000;
/** A stopping relay gives its events at least this long after the queue's handoff. */
export const EVENTS_HANDOFF_MIN_MS = 10_000;

/** The part of an outbox a handoff reads and acknowledges (events/outbox.ts). */
export interface EventsBacklog {
  readonly unsent: number;
  read(max: number): Promise<{ events: MailEvent[]; end: Position }>;
  commit(position: Position): Promise<void>;
}

export interface EventsHandoffDeps {
  instance: string;
  secret: Buffer;
  target: HandoffTarget;
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
  now(): number;
  /** Counted once a peer acknowledged `count` events. */
  sent?(count: number): void;
}

export interface EventsHandoffSummary {
  /** Ready peers found. */
  peers: number;
  /** Events a peer acknowledged (fsynced into its outbox). */
  sent: number;
  /** Peers that refused because they write no events (no `events` in their config). */
  withoutOutbox: number;
  /** Events still in this outbox. */
  left: number;
}

/**
 * When a stopping relay's events handoff must end: the drain's deadline, or EVENTS_HANDOFF_MIN_MS
 * from now when the queue's handoff used the drain's time up (the pod's grace period is
 * drainTimeout + 30 s). Pure.
 */
export function eventsDeadline(drainDeadline: number, now: number): number {
  return Math.max(drainDeadline, now + EVENTS_HANDOFF_MIN_MS);
}

/**
 * What an evacuation's exit code says (0: done; 1: the Job runs again). Mail left means 1, and so
 * do events left while some peer writes events (it may take them next time); events that no peer
 * can take (no peer of the pool writes events) stay on the claim and do not hold the Job. Pure.
 */
export function evacuationExitCode(left: {
  messages: number;
  events: number;
  eventsUnwanted: boolean;
}): 0 | 1 {
  if (left.messages > 0) return 1;
  return left.events > 0 && !left.eventsUnwanted ? 1 : 0;
}

/** Hands `outbox`'s unacknowledged events to ready peers until none are left, no peer takes more, or `deadline`. */
export async function handOffEvents(
  deps: EventsHandoffDeps,
  outbox: EventsBacklog,
  deadline: number,
): Promise<EventsHandoffSummary> {
  const summary: EventsHandoffSummary = { peers: 0, sent: 0, withoutOutbox: 0, left: outbox.unsent };
  if (outbox.unsent === 0) return summary;
  let peers = readyPeers(await probePeers(deps), deps.instance);
  summary.peers = peers.length;
  // One peer at a time: the events reach the receiver in this relay's order after its own.
  while (outbox.unsent > 0 && peers.length > 0 && deps.now() < deadline) {
    const peer = peers[0]!;
    const { events, end } = await outbox.read(BATCH_EVENTS);
    if (events.length === 0) break;
    try {
      await sendEvents(deps, peer, events, deadline);
    } catch (err) {
      const message = String((err as Error).message ?? err);
      if (message.startsWith('503 no events outbox')) summary.withoutOutbox++;
      deps.log('warn', 'events handoff failed, trying another peer', { peer: peer.address, err: message });
      peers = peers.slice(1);
      continue;
    }
    // Acknowledged (fsynced) by the peer. A kill before this commit sends them again next time.
    await outbox.commit(end);
    summary.sent += events.length;
    deps.sent?.(events.length);
  }
  summary.left = outbox.unsent;
  return summary;
}

async function sendEvents(
  deps: EventsHandoffDeps,
  peer: Peer,
  events: MailEvent[],
  deadline: number,
): Promise<void> {
  const timeout = Math.max(1000, Math.min(REQUEST_TIMEOUT_MS, deadline - deps.now()));
  const body = Buffer.concat(events.map(encodeEvent));
  const text = await call(deps.secret, peer.address, 'POST', EVENTS_PATH, body, timeout, deps.now());
  if (!parseEventsReply(text, events.length)) throw new Error('malformed events reply');
}

/** The shard numbers of outbox directories `<base>-shard-<k>` among a directory's entries. Pure. */
export function outboxShardIndexes(entries: readonly string[], base: string): number[] {
  const prefix = `${base}-shard-`;
  return entries
    .filter((e) => e.startsWith(prefix) && /^[1-9][0-9]*$/.test(e.slice(prefix.length)))
    .map((e) => Number(e.slice(prefix.length)))
    .sort((a, b) => a - b);
}

/**
 * Moves every unacknowledged event of `from` into `store` (an outbox of this relay, fsynced before
 * it resolves), acknowledging them in `from` only after: a crash in between leaves a second copy,
 * never a loss. Returns how many moved.
 */
export async function moveBacklog(
  from: EventsBacklog,
  store: (events: MailEvent[]) => Promise<void>,
): Promise<number> {
  let moved = 0;
  while (from.unsent > 0) {
    const { events, end } = await from.read(BATCH_EVENTS);
    if (events.length === 0) break;
    await store(events);
    await from.commit(end);
    moved += events.length;
  }
  return moved;
}
