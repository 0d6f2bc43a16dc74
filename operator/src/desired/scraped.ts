// One pod of a pool as the scraper (scrape/scraper.ts) last read it: a relay (its queue, events
// backlog, shared store, intake) or a pod of the pool's tracker Deployment (its events backlog).
// Plain data and one pure split.
import type { RelayQueue } from './deletion.ts';

/** A tracker pod's last reading: the age of its oldest event the receiver has not acknowledged. */
export type TrackerReading = { pod: string; scrapedAt?: number; eventsOldestSeconds?: number };

export type ScrapedPod = ({ kind: 'relay' } & RelayQueue) | ({ kind: 'tracker' } & TrackerReading);

/** The relays' readings (a drain waits on their queues) and the trackers', apart. Pure. */
export function splitScraped(pods: readonly ScrapedPod[]): {
  relays: RelayQueue[];
  trackers: TrackerReading[];
} {
  const relays: RelayQueue[] = [];
  const trackers: TrackerReading[] = [];
  for (const { kind, ...reading } of pods) (kind === 'relay' ? relays : trackers).push(reading);
  return { relays, trackers };
}
