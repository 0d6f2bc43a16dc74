// What a pool deleted with Drain waits for once its queues are empty: the webhook events
// (spec.events) its relays and tracker have not delivered. All the pool's pods stop together when
// the finalizer goes, so none has a peer to hand its events outbox to: what is unsent then is lost
// with the emptyDirs. So the tracker is stopped first (desired/tracker.ts, replicas 0 from the
// deletion on: a stopping tracker hands its unsent opens and clicks to a relay, which still runs),
// and the finalizer waits until the tracker's pods are gone and then every relay's outbox reads
// empty in a reading taken after its queue emptied with the intake closed and no tracker pod left
// (scrape/relay-metrics.ts quietSince). The wait is bounded like the mail's: it ends at the latest
// retry.maxQueueLifetime after the deletion, as a queue would have expired by then; what is unsent
// at that moment goes with the relays (said in the condition). Pure.
import type { RelayPool } from '../api/types.ts';
import { DEFAULTS } from '../../../contract/defaults.ts';
import { durationMs } from '../../../contract/duration.ts';

/** A relay's last reading, as far as its events outbox goes (deletion.ts OutboxReading). */
export type OutboxReading = {
  pod: string;
  scrapedAt?: number;
  /** Events in its outbox not yet acknowledged; absent: not reported. */
  eventsUnsent?: number;
  /** Start of its current run of readings with intake closed, queue empty, no tracker pod. */
  quietSince?: number;
};

export type EventsWait =
  /**
   * Nothing left to wait for. `abandoned`: the bound (`deadline`) was reached while waiting, with
   * this many events known to be unsent (a tracker pod still there holds an unknown number).
   */
  | { done: true; abandoned?: { unsent: number; deadline: string } }
  | { done: false; reason: 'StoppingTracker' | 'EventsPending'; unsent: number; detail: string };

export type EventsWaitInput = {
  pool: RelayPool;
  /** The relays, every one read after the deletion with an empty queue (deletion.ts checked). */
  relays: readonly OutboxReading[];
  /** Pods of the pool's tracker still in the operator's cache (Running or Terminating). */
  trackerPods: readonly string[];
  /** ms since the epoch. */
  now: number;
};

/** Events known to be unsent on the relays, and on how many. */
export function unsentEvents(relays: readonly OutboxReading[]): { unsent: number; relays: number } {
  const holding = relays.filter((r) => (r.eventsUnsent ?? 0) > 0);
  return { unsent: holding.reduce((sum, r) => sum + (r.eventsUnsent ?? 0), 0), relays: holding.length };
}

/** A reading of the relay's outbox after which nothing can join it (quietSince, then a later one). */
const final = (r: OutboxReading) =>
  r.eventsUnsent !== undefined && r.quietSince !== undefined && (r.scrapedAt ?? 0) > r.quietSince;

export function eventsWait(o: EventsWaitInput): EventsWait {
  const events = o.pool.spec?.events;
  // No webhook: no outbox anywhere.
  if (!events) return { done: true };
  const since = Date.parse(String(o.pool.metadata.deletionTimestamp));
  const lifetime = o.pool.spec?.retry?.maxQueueLifetime ?? DEFAULTS.retry.maxQueueLifetime;
  const deadline = new Date(since + durationMs(lifetime)).toISOString();
  const { unsent, relays } = unsentEvents(o.relays);
  const bound = `the wait ends at ${deadline} at the latest (retry.maxQueueLifetime ${lifetime} after the deletion), then what is unsent is lost with the relays`;
  const wait = ((): EventsWait => {
    if (o.trackerPods.length > 0)
      return {
        done: false,
        reason: 'StoppingTracker',
        unsent,
        detail: `the tracker is stopped first: its pods ${[...o.trackerPods].sort().join(', ')} hand the opens and clicks ${events.url} has not acknowledged to a relay of the pool before they go; ${bound}`,
      };
    // A successor pool takes the relays' events with their drain (relay handoff.evacuateTo).
    if (o.pool.spec?.deletionHandOffTo) return { done: true };
    const unread = o.relays.filter((r) => !final(r)).map((r) => r.pod);
    if (unsent === 0 && unread.length === 0) return { done: true };
    const parts = [`${unsent} webhook events not yet acknowledged by ${events.url} on ${relays} relays`];
    if (unread.length > 0)
      parts.push(
        `events outbox not read again since the queue emptied and the tracker stopped on ${unread.sort().join(', ')}`,
      );
    parts.push(`is the receiver answering 2xx? (mailfleet_relay_events_failures_total); ${bound}`);
    return { done: false, reason: 'EventsPending', unsent, detail: parts.join('; ') };
  })();
  if (!wait.done && o.now >= Date.parse(deadline)) return { done: true, abandoned: { unsent, deadline } };
  return wait;
}
