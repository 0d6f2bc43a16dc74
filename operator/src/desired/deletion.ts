// Deleting a pool is a decision about the mail its relays hold (spec.deletionPolicy). Drain: the
// finalizer DRAIN_FINALIZER keeps the pool, and so its relays (their owner references point at
// it), and their intake is closed (relay config intake.open: false) so the queues can empty. The
// finalizer goes once every relay reported its intake closed and then, in a later scrape, an empty
// queue: what it acknowledged before the switch is in that reading, so nothing escapes. The relays
// go on delivering meanwhile, and expiry (retry.maxQueueLifetime) bounds how long that can take.
// With spec.deletionHandOffTo the relays hand their queues to the named pool's relays instead
// (handoff-to.ts), and the same empty-queue reading ends the wait.
// With spec.events the finalizer then waits for the webhook events too (deletion-events.ts): the
// tracker stops first and hands its events to the relays, whose outboxes must then read empty.
// Discard: the finalizer goes and the relays go with what they hold. A queue nobody could read
// (a relay not Ready, not scraped since the deletion, or an operator that does not scrape) is
// never taken for an empty one.
import { cond } from '../api/conditions.ts';
import type { ConditionInput } from '../api/conditions.ts';
import type { RelayPool } from '../api/types.ts';
import { eventsWait, unsentEvents } from './deletion-events.ts';

export const DRAIN_FINALIZER = 'mailfleet.dev/drain';
const DELETING_CONDITION = 'Deleting';

/** How soon a draining pool looks at its relays' queues again (the scraper's reading). */
const DRAIN_RECHECK_MS = 5000;

/** One relay pod of the pool and what its last scrape said about its queue. */
export type RelayQueue = {
  pod: string;
  /** Delivery jobs queued at the last scrape; absent: never scraped (or not a relay's metrics). */
  queued?: number;
  /** When that scrape was taken (ms since the epoch). */
  scrapedAt?: number;
  /** Age of the relay's oldest event not yet acknowledged by the events webhook (spec.events). */
  eventsOldestSeconds?: number;
  /** Whether the relay reached the pool's shared state store at that scrape (shared-state.ts). */
  sharedStateUp?: boolean;
  /**
   * When the relay's intake gauge first read closed in its current run of closed readings (the
   * scrape time); absent: open at the last scrape, or a relay that does not export the gauge.
   */
  intakeClosedAt?: number;
  /** Events in the relay's webhook outbox not yet acknowledged (spec.events); absent: not reported. */
  eventsUnsent?: number;
  /**
   * When its current run of readings with intake closed, an empty queue and no tracker pod of the
   * pool began (scrape/relay-metrics.ts quietSince): a later reading of its outbox is final.
   */
  quietSince?: number;
};

export type DeletionDecision = {
  /** The finalizer change to write, if any. */
  finalizer?: { add: string } | { remove: string };
  condition?: ConditionInput;
  /** Jobs known to be queued (status.queuedJobs), while a Drain waits. */
  queuedJobs?: number;
  requeueAfterMs?: number;
};

/** How to end a drain; deletionHandOffTo goes too, as the API refuses it with Discard. */
const escape = (pool: RelayPool) =>
  `to delete the pool now and lose what is queued: kubectl patch relaypool <name> --type merge -p '{"spec":{"deletionPolicy":"Discard"${pool.spec?.deletionHandOffTo ? ',"deletionHandOffTo":null' : ''}}}'`;

/**
 * The pool named by spec.deletionHandOffTo (handoff-to.ts): `problem` says why its relays cannot
 * take the queue now (the deleting pool's relays deliver themselves meanwhile).
 */
export type HandOffState = { target: string; problem?: string };

/**
 * Whether the pool's relays take new mail (their config's intake.open): not while a Drain deletion
 * waits for their queues to empty. A Discard deletion deletes them at once, with their own drain.
 */
export function intakeOpen(pool: RelayPool): boolean {
  return !pool.metadata.deletionTimestamp || (pool.spec?.deletionPolicy ?? 'Drain') !== 'Drain';
}

/** A reading taken after the relay reported its intake closed: its queue then holds all it accepted. */
const readAfterClosing = (r: RelayQueue) =>
  r.intakeClosedAt !== undefined && (r.scrapedAt ?? 0) > r.intakeClosedAt;

/** The pool's tracker pods still in the cache, and the time of the decision (ms since the epoch). */
export type TrackerState = { trackerPods: readonly string[]; now: number };

/**
 * What the pool's finalizer and its Deleting condition should be. `relays` is undefined when the
 * operator does not read relay queues at all (--scrape-interval 0).
 */
export function deletionDecision(
  pool: RelayPool,
  relays: readonly RelayQueue[] | undefined,
  handOff?: HandOffState,
  tracker?: TrackerState,
): DeletionDecision {
  const finalizers = pool.metadata.finalizers ?? [];
  const has = finalizers.includes(DRAIN_FINALIZER);
  const remove = { remove: DRAIN_FINALIZER };
  const drain = (pool.spec?.deletionPolicy ?? 'Drain') === 'Drain';
  const deletedAt = pool.metadata.deletionTimestamp;
  if (!deletedAt) {
    if (drain && !has) return { finalizer: { add: DRAIN_FINALIZER } };
    if (!drain && has) return { finalizer: remove };
    return {};
  }
  // Someone removed the finalizer by hand (or it was never added): the pool is going now.
  if (!has) return {};
  if (!drain)
    return {
      finalizer: remove,
      condition: cond(
        DELETING_CONDITION,
        'True',
        'Discarding',
        'deletionPolicy Discard: the relays are deleted with whatever they hold',
      ),
    };
  // A string in the JSON the informer holds, whatever the client type says.
  const since = Date.parse(String(deletedAt));
  const known = (relays ?? []).filter((r) => r.queued !== undefined && (r.scrapedAt ?? 0) >= since);
  const unknown = (relays ?? []).filter((r) => !known.includes(r)).map((r) => r.pod);
  const accepting = known.filter((r) => !readAfterClosing(r)).map((r) => r.pod);
  const queued = known.reduce((sum, r) => sum + (r.queued ?? 0), 0);
  if (relays !== undefined && unknown.length === 0 && accepting.length === 0 && queued === 0) {
    const events = eventsWait({
      pool,
      relays: known,
      trackerPods: tracker?.trackerPods ?? [],
      now: tracker?.now ?? since,
    });
    if (!events.done)
      return {
        condition: cond(
          DELETING_CONDITION,
          'True',
          events.reason,
          `deletionPolicy Drain: every relay (${known.length}) reported its intake closed, then an empty queue; ${events.detail}; ${escape(pool)}`,
        ),
        queuedJobs: 0,
        requeueAfterMs: DRAIN_RECHECK_MS,
      };
    const lost = events.abandoned
      ? `; the wait for webhook events reached its bound (${events.abandoned.deadline}, retry.maxQueueLifetime after the deletion): ${events.abandoned.unsent} events known unsent are lost with them`
      : pool.spec?.events
        ? ', then every webhook event acknowledged or handed on'
        : '';
    return {
      finalizer: remove,
      condition: cond(
        DELETING_CONDITION,
        'True',
        events.abandoned ? 'EventsAbandoned' : 'Drained',
        `every relay (${known.length}) reported its intake closed, then an empty queue${lost}: the pool and its relays are deleted`,
      ),
      queuedJobs: 0,
    };
  }
  const parts = [
    `${queued} delivery jobs queued on ${known.filter((r) => (r.queued ?? 0) > 0).length} relays`,
  ];
  const events = unsentEvents(known);
  if (pool.spec?.events && events.unsent > 0)
    parts.push(
      `${events.unsent} webhook events unsent on ${events.relays} relays (waited for after the queues)`,
    );
  if (relays === undefined)
    parts.push(
      'the operator does not read relay queues (--scrape-interval 0), so it cannot tell when they are empty',
    );
  else if (unknown.length > 0)
    parts.push(
      `queue not read since the deletion on ${unknown.sort().join(', ')} (not Ready or not scraped yet)`,
    );
  if (accepting.length > 0)
    parts.push(
      `intake not yet reported closed and read again on ${accepting.sort().join(', ')} (they may still accept mail)`,
    );
  if (handOff?.problem)
    parts.push(
      `cannot hand the queue to pool ${handOff.target}: ${handOff.problem}, so the relays deliver it themselves meanwhile`,
    );
  const reason =
    relays === undefined || unknown.length > 0
      ? 'QueueUnknown'
      : accepting.length > 0
        ? 'ClosingIntake'
        : handOff?.problem
          ? 'HandOffTargetMissing'
          : handOff
            ? 'HandingOff'
            : 'DrainingQueue';
  const what = handOff
    ? `the relays' intake is closed and they hand their queues to the relays of pool ${handOff.target} until they are empty`
    : "the relays' intake is closed and they keep delivering until their queues are empty";
  return {
    condition: cond(
      DELETING_CONDITION,
      'True',
      reason,
      `deletionPolicy Drain: ${what}; ${parts.join('; ')}; ${escape(pool)}`,
    ),
    queuedJobs: queued,
    requeueAfterMs: DRAIN_RECHECK_MS,
  };
}
