// spec.events in the pool's objects: the relay config's events section, the projected Secret
// volume source with the signing secret, the receiver's port for egress, and the pool condition
// that says whether the relays and the tracker's pods keep up (read from their metrics by the
// scraper). Pure.
import type { V1VolumeProjection } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { cond, type ConditionInput } from '../api/conditions.ts';
import type { Observed } from './types.ts';
import type { RelayConfigInput } from '../../../contract/config.ts';
import { EVENTS_SECRET_FILE } from '../../../contract/layout.ts';
import { durationMs } from '../../../contract/duration.ts';

type Events = NonNullable<DefaultedRelayPool['spec']['events']>;
export const EVENTS_CONDITION = 'EventsDelivering';

/** The relay config's events (the outbox in the spool, the relay's default); undefined without spec.events. */
export function eventsConfig(pool: DefaultedRelayPool): NonNullable<RelayConfigInput['events']> | undefined {
  const e = pool.spec.events;
  if (!e) return undefined;
  return {
    url: e.url,
    secretFile: EVENTS_SECRET_FILE,
    ...(e.types && e.types.length > 0 ? { types: [...e.types] } : {}),
    batchSize: e.batchSize,
    batchInterval: e.batchInterval,
    maxBytes: e.maxOutboxBytes,
  };
}

/** The signing secret as a source of the relay's projected config volume. */
export function eventsSecretSource(pool: DefaultedRelayPool): V1VolumeProjection | undefined {
  const ref = pool.spec.events?.secretRef;
  if (!ref) return undefined;
  return { secret: { name: ref.name, items: [{ key: ref.key ?? 'secret', path: EVENTS_SECRET_FILE }] } };
}

/** The TCP port of the receiver (443 or 80 unless the URL names one); undefined: URL unparsable. */
export function eventsPort(events: Events): number | undefined {
  if (!URL.canParse(events.url)) return undefined;
  const url = new URL(events.url);
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** One pod's events backlog as last scraped: the age of its oldest unacknowledged event. */
export type EventsLag = { pod: string; kind: 'relay' | 'tracker'; oldestSeconds?: number };

/** The backlogs of the pool's relays and of its tracker's pods, as the scraper read them. Pure. */
export function eventsLags(observed: Pick<Observed, 'relayQueues' | 'trackers'>): EventsLag[] {
  const lag = (kind: EventsLag['kind']) => (r: { pod: string; eventsOldestSeconds?: number }) => ({
    pod: r.pod,
    kind,
    ...(r.eventsOldestSeconds === undefined ? {} : { oldestSeconds: r.eventsOldestSeconds }),
  });
  return [
    ...(observed.relayQueues ?? []).map(lag('relay')),
    ...(observed.trackers ?? []).map(lag('tracker')),
  ];
}

/** Where a lagging pod's failed POSTs are counted. */
const FAILURES = {
  relay: 'mailfleet_relay_events_failures_total',
  tracker: 'mailfleet_tracker_events_failures_total',
};

/**
 * EventsDelivering: True while every scraped pod's oldest unacknowledged event (the relays' and
 * the tracker's: both post to spec.events.url) is younger than spec.events.maxLag, False (Behind)
 * naming the pods that are not, Unknown before any pod was read. undefined without spec.events
 * (the condition is removed).
 */
export function eventsCondition(
  pool: DefaultedRelayPool,
  pods: readonly EventsLag[],
): ConditionInput | undefined {
  const e = pool.spec.events;
  if (!e) return undefined;
  const read = pods.filter((r) => r.oldestSeconds !== undefined);
  if (read.length === 0)
    return cond(
      EVENTS_CONDITION,
      'Unknown',
      'NotScraped',
      'no relay or tracker pod of the pool has reported its events outbox yet',
    );
  const limit = durationMs(e.maxLag) / 1000;
  const behind = read.filter((r) => r.oldestSeconds! > limit);
  if (behind.length === 0)
    return cond(
      EVENTS_CONDITION,
      'True',
      'AsExpected',
      `every relay's and tracker pod's oldest unsent event is younger than ${e.maxLag}`,
    );
  const worst = Math.max(...behind.map((r) => r.oldestSeconds!));
  const names = behind
    .map((r) => (r.kind === 'tracker' ? `${r.pod} (tracker)` : r.pod))
    .sort()
    .join(', ');
  const counters = [...new Set(behind.map((r) => FAILURES[r.kind]))].sort().join(', ');
  return cond(
    EVENTS_CONDITION,
    'False',
    'Behind',
    `${names}: oldest unsent event ${Math.round(worst)}s old (maxLag ${e.maxLag}); is ${e.url} answering 2xx? (${counters})`,
  );
}
