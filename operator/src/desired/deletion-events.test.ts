import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventsWait } from './deletion-events.ts';
import type { EventsWait } from './deletion-events.ts';
import type { OutboxReading as RelayQueue } from './deletion-events.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import type { RelayPool } from '../api/types.ts';

const DELETED_AT = '2026-12-05T20:00:00Z';
const T0 = Date.parse(DELETED_AT);
const QUIET = T0 + 10_000;
const LATER = T0 + 15_000;
const HOUR = 3_600_000;

function pool(o: { events?: boolean; handOffTo?: string; lifetime?: string } = {}): RelayPool {
  const p = relayPool({
    ...(o.events === false
      ? {}
      : { events: { url: 'https://hooks.example/in', secretRef: { name: 'hmac' } } }),
    ...(o.handOffTo ? { deletionHandOffTo: o.handOffTo } : {}),
    ...(o.lifetime ? { retry: { maxQueueLifetime: o.lifetime } } : {}),
  });
  p.metadata.deletionTimestamp = DELETED_AT as unknown as Date;
  return p;
}

/** A relay read after the deletion with an empty queue (deletion.ts checked); by default quiet since QUIET and read again at LATER. */
const relay = (pod: string, unsent: number | undefined, o: { quiet?: number | null; at?: number } = {}) => {
  const r: RelayQueue = { pod, scrapedAt: o.at ?? LATER };
  if (unsent !== undefined) r.eventsUnsent = unsent;
  if (o.quiet !== null) r.quietSince = o.quiet ?? QUIET;
  return r;
};

test('what a Drain deletion waits for after the queues: the tracker, then the relays’ events outboxes', async (t) => {
  const cases: {
    name: string;
    pool: RelayPool;
    relays: RelayQueue[];
    trackerPods?: string[];
    now?: number;
    want: { done: boolean; reason?: string; unsent?: number; abandoned?: number };
  }[] = [
    {
      name: 'no spec.events: nothing to wait for, even with tracker pods still stopping',
      pool: pool({ events: false }),
      relays: [relay('a', undefined, { quiet: null })],
      trackerPods: ['t-1'],
      want: { done: true },
    },
    {
      name: 'a tracker pod still there (running or terminating): StoppingTracker, whatever the outboxes say',
      pool: pool(),
      relays: [relay('a', 0), relay('b', 4)],
      trackerPods: ['t-1'],
      want: { done: false, reason: 'StoppingTracker', unsent: 4 },
    },
    {
      name: 'tracker gone, every outbox read empty after the relay went quiet: done',
      pool: pool(),
      relays: [relay('a', 0), relay('b', 0)],
      want: { done: true },
    },
    {
      name: 'an outbox holding events: EventsPending with the count over the relays',
      pool: pool(),
      relays: [relay('a', 7), relay('b', 0), relay('c', 5)],
      want: { done: false, reason: 'EventsPending', unsent: 12 },
    },
    {
      name: 'an empty outbox read in the very scrape the relay went quiet: one more reading is needed',
      pool: pool(),
      relays: [relay('a', 0), relay('b', 0, { quiet: LATER })],
      want: { done: false, reason: 'EventsPending', unsent: 0 },
    },
    {
      name: 'a relay not quiet yet (a tracker pod was in the cache at its last reading): waits',
      pool: pool(),
      relays: [relay('a', 0, { quiet: null })],
      want: { done: false, reason: 'EventsPending', unsent: 0 },
    },
    {
      name: 'a relay that does not report its outbox (an older version) is never taken for empty',
      pool: pool(),
      relays: [relay('a', undefined)],
      want: { done: false, reason: 'EventsPending', unsent: 0 },
    },
    {
      name: 'no relay left: nothing to wait for',
      pool: pool(),
      relays: [],
      want: { done: true },
    },
    {
      name: 'with deletionHandOffTo the relays carry their events to the successor: only the tracker is waited for',
      pool: pool({ handOffTo: 'next' }),
      relays: [relay('a', 9, { quiet: null })],
      want: { done: true },
    },
    {
      name: 'with deletionHandOffTo and a tracker pod still there: StoppingTracker',
      pool: pool({ handOffTo: 'next' }),
      relays: [relay('a', 9)],
      trackerPods: ['t-1'],
      want: { done: false, reason: 'StoppingTracker', unsent: 9 },
    },
    {
      name: 'events still pending at retry.maxQueueLifetime after the deletion: the wait ends, the count is given',
      pool: pool({ lifetime: '1h' }),
      relays: [relay('a', 3), relay('b', 2)],
      now: T0 + HOUR,
      want: { done: true, abandoned: 5 },
    },
    {
      name: 'a tracker pod stuck terminating at the bound: the wait ends too',
      pool: pool({ lifetime: '1h' }),
      relays: [relay('a', 0)],
      trackerPods: ['t-1'],
      now: T0 + HOUR,
      want: { done: true, abandoned: 0 },
    },
    {
      name: 'just before the bound (default 5d): still waiting',
      pool: pool(),
      relays: [relay('a', 3)],
      now: T0 + 5 * 24 * HOUR - 1,
      want: { done: false, reason: 'EventsPending', unsent: 3 },
    },
    {
      name: 'past the bound with nothing pending: done, nothing abandoned',
      pool: pool({ lifetime: '1h' }),
      relays: [relay('a', 0)],
      now: T0 + 2 * HOUR,
      want: { done: true },
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const w: EventsWait = eventsWait({
        pool: c.pool,
        relays: c.relays,
        trackerPods: c.trackerPods ?? [],
        now: c.now ?? LATER,
      });
      assert.equal(w.done, c.want.done);
      if (w.done) assert.equal(w.abandoned?.unsent, c.want.abandoned);
      else {
        assert.equal(w.reason, c.want.reason);
        assert.equal(w.unsent, c.want.unsent);
      }
    });
});

test('the EventsPending detail names the receiver, the relays not read again and the bound', () => {
  const w = eventsWait({
    pool: pool({ lifetime: '2h' }),
    relays: [relay('r-1', 6), relay('r-0', 0, { quiet: LATER })],
    trackerPods: [],
    now: LATER,
  });
  assert.equal(w.done, false);
  const detail = w.done ? '' : w.detail;
  assert.match(detail, /^6 webhook events not yet acknowledged by https:\/\/hooks\.example\/in on 1 relays/);
  assert.match(detail, /not read again since the queue emptied and the tracker stopped on r-0;/);
  assert.match(detail, /ends at 2026-12-05T22:00:00\.000Z at the latest \(retry\.maxQueueLifetime 2h/);
});

test('the StoppingTracker detail names the tracker pods', () => {
  const w = eventsWait({
    pool: pool(),
    relays: [],
    trackerPods: ['news-tracker-b', 'news-tracker-a'],
    now: LATER,
  });
  assert.match(w.done ? '' : w.detail, /its pods news-tracker-a, news-tracker-b hand the opens and clicks/);
});
