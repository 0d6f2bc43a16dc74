import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DRAIN_FINALIZER, deletionDecision, intakeOpen } from './deletion.ts';
import type { DeletionDecision, RelayQueue } from './deletion.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import type { RelayPool } from '../api/types.ts';

const DELETED_AT = '2026-12-05T20:00:00Z';
const AFTER = Date.parse(DELETED_AT) + 1000;
const BEFORE = Date.parse(DELETED_AT) - 1000;

function pool(o: { policy?: 'Drain' | 'Discard'; finalizers?: string[]; deleting?: boolean }): RelayPool {
  const p = relayPool(o.policy ? { deletionPolicy: o.policy } : {});
  if (o.finalizers) p.metadata.finalizers = o.finalizers;
  if (o.deleting) p.metadata.deletionTimestamp = DELETED_AT as unknown as Date;
  return p;
}

const CLOSED = AFTER - 500;

/** A relay as scraped: by default its intake read closed (CLOSED) before this reading (AFTER). */
const relay = (
  pod: string,
  queued?: number,
  scrapedAt = AFTER,
  intakeClosedAt: number | null = CLOSED,
): RelayQueue => {
  if (queued === undefined) return { pod };
  const r: RelayQueue = { pod, queued, scrapedAt };
  if (intakeClosedAt !== null) r.intakeClosedAt = intakeClosedAt;
  return r;
};

test('the drain finalizer and the Deleting condition', async (t) => {
  const cases: {
    name: string;
    pool: RelayPool;
    relays: RelayQueue[] | undefined;
    want: Pick<DeletionDecision, 'finalizer' | 'queuedJobs'> & { reason?: string; requeue?: boolean };
  }[] = [
    {
      name: 'a live pool (Drain by default) gets the finalizer',
      pool: pool({}),
      relays: [],
      want: { finalizer: { add: DRAIN_FINALIZER } },
    },
    {
      name: 'a live pool that has it keeps it, next to other finalizers',
      pool: pool({ finalizers: ['other.example/x', DRAIN_FINALIZER] }),
      relays: [],
      want: {},
    },
    {
      name: 'a live pool switched to Discard loses it',
      pool: pool({ policy: 'Discard', finalizers: [DRAIN_FINALIZER] }),
      relays: [],
      want: { finalizer: { remove: DRAIN_FINALIZER } },
    },
    {
      name: 'a live Discard pool never gets it',
      pool: pool({ policy: 'Discard' }),
      relays: [],
      want: {},
    },
    {
      name: 'deleting with mail queued: waits, counts the jobs',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 30), relay('b', 0), relay('c', 12)],
      want: { queuedJobs: 42, reason: 'DrainingQueue', requeue: true },
    },
    {
      name: 'deleting, every relay empty after reporting its intake closed: the finalizer goes',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 0), relay('b', 0)],
      want: { finalizer: { remove: DRAIN_FINALIZER }, queuedJobs: 0, reason: 'Drained' },
    },
    {
      name: 'an empty queue from a relay whose intake still reads open: waits, ClosingIntake',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 0), relay('b', 0, AFTER, null)],
      want: { queuedJobs: 0, reason: 'ClosingIntake', requeue: true },
    },
    {
      name: 'intake closed at this very reading: one more reading is needed (mail acknowledged just before the switch may not be counted yet)',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 0), relay('b', 0, AFTER, AFTER)],
      want: { queuedJobs: 0, reason: 'ClosingIntake', requeue: true },
    },
    {
      name: 'intake closed and mail still queued: DrainingQueue with the count',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 5), relay('b', 0)],
      want: { queuedJobs: 5, reason: 'DrainingQueue', requeue: true },
    },
    {
      name: 'intake still open and mail queued: ClosingIntake (the count is in the message)',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 5, AFTER, null), relay('b', 0)],
      want: { queuedJobs: 5, reason: 'ClosingIntake', requeue: true },
    },
    {
      name: 'an older relay without the intake gauge never counts as closed: waits',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 0, AFTER, null)],
      want: { queuedJobs: 0, reason: 'ClosingIntake', requeue: true },
    },
    {
      name: 'an unread relay outranks an open intake: QueueUnknown',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 0, AFTER, null), relay('b')],
      want: { queuedJobs: 0, reason: 'QueueUnknown', requeue: true },
    },
    {
      name: 'an empty reading from before the deletion is not trusted',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 0), relay('b', 0, BEFORE)],
      want: { queuedJobs: 0, reason: 'QueueUnknown', requeue: true },
    },
    {
      name: 'a relay never scraped (kwok pod, not Ready) is not taken for empty',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 0), relay('b')],
      want: { queuedJobs: 0, reason: 'QueueUnknown', requeue: true },
    },
    {
      name: 'an operator that does not scrape cannot tell: waits',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: undefined,
      want: { queuedJobs: 0, reason: 'QueueUnknown', requeue: true },
    },
    {
      name: 'no relay pod left: nothing is queued',
      pool: pool({ finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [],
      want: { finalizer: { remove: DRAIN_FINALIZER }, queuedJobs: 0, reason: 'Drained' },
    },
    {
      name: 'Discard set while deleting (the escape hatch): the finalizer goes at once',
      pool: pool({ policy: 'Discard', finalizers: [DRAIN_FINALIZER], deleting: true }),
      relays: [relay('a', 500)],
      want: { finalizer: { remove: DRAIN_FINALIZER }, reason: 'Discarding' },
    },
    {
      name: 'the finalizer removed by hand: nothing left to decide',
      pool: pool({ deleting: true }),
      relays: [relay('a', 500)],
      want: {},
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const d = deletionDecision(c.pool, c.relays);
      assert.deepEqual(d.finalizer, c.want.finalizer);
      assert.equal(d.queuedJobs, c.want.queuedJobs);
      assert.equal(d.condition?.reason, c.want.reason);
      if (d.condition) assert.equal(d.condition.type, 'Deleting');
      assert.equal(d.requeueAfterMs !== undefined, c.want.requeue === true);
    });
});

test('the Deleting message names the relays that may still accept mail', () => {
  const d = deletionDecision(pool({ finalizers: [DRAIN_FINALIZER], deleting: true }), [
    relay('r-2', 0),
    relay('r-1', 0, AFTER, AFTER),
    relay('r-0', 3, AFTER, null),
  ]);
  assert.equal(d.condition?.reason, 'ClosingIntake');
  assert.match(d.condition?.message ?? '', /intake not yet reported closed and read again on r-0, r-1 \(/);
  assert.match(d.condition?.message ?? '', /3 delivery jobs queued on 1 relays/);
  assert.doesNotMatch(d.condition?.message ?? '', /r-2/);
});

test('intake open unless a Drain deletion waits', () => {
  assert.equal(intakeOpen(pool({})), true);
  assert.equal(intakeOpen(pool({ deleting: true })), false);
  assert.equal(intakeOpen(pool({ policy: 'Drain', deleting: true })), false);
  assert.equal(intakeOpen(pool({ policy: 'Discard', deleting: true })), true);
});

test('the Deleting message names the unread relays and the escape hatch', () => {
  const d = deletionDecision(pool({ finalizers: [DRAIN_FINALIZER], deleting: true }), [
    relay('r-1', 7),
    relay('r-0'),
  ]);
  assert.match(d.condition?.message ?? '', /7 delivery jobs queued on 1 relays/);
  assert.match(d.condition?.message ?? '', /not read since the deletion on r-0/);
  assert.match(d.condition?.message ?? '', /"deletionPolicy":"Discard"/);
});

test('with spec.events the finalizer waits for the tracker and the events outboxes after the queues', async (t) => {
  const events = { url: 'https://hooks.example/in', secretRef: { name: 'hmac' } };
  const deleting = (policy: 'Drain' | 'Discard' = 'Drain', lifetime?: string) => {
    const p = relayPool({
      events,
      deletionPolicy: policy,
      ...(lifetime ? { retry: { maxQueueLifetime: lifetime } } : {}),
    });
    p.metadata.finalizers = [DRAIN_FINALIZER];
    p.metadata.deletionTimestamp = DELETED_AT as unknown as Date;
    return p;
  };
  /** Empty queue, intake closed at CLOSED, quiet since CLOSED, read again at AFTER with `unsent` events. */
  const quiet = (pod: string, unsent: number, queued = 0): RelayQueue => ({
    ...relay(pod, queued),
    eventsUnsent: unsent,
    ...(queued === 0 ? { quietSince: CLOSED } : {}),
  });
  const cases: {
    name: string;
    pool: RelayPool;
    relays: RelayQueue[];
    trackerPods?: string[];
    now?: number;
    want: { remove: boolean; reason: string; message: RegExp };
  }[] = [
    {
      name: 'mail still queued: DrainingQueue, the unsent events counted in the message',
      pool: deleting(),
      relays: [quiet('a', 40, 3), quiet('b', 2)],
      want: { remove: false, reason: 'DrainingQueue', message: /42 webhook events unsent on 2 relays/ },
    },
    {
      name: 'queues empty, a tracker pod left: StoppingTracker',
      pool: deleting(),
      relays: [quiet('a', 0)],
      trackerPods: ['transactional-tracker-x'],
      want: { remove: false, reason: 'StoppingTracker', message: /transactional-tracker-x/ },
    },
    {
      name: 'queues empty, tracker gone, events unsent (the receiver down): EventsPending with the count',
      pool: deleting(),
      relays: [quiet('a', 3), quiet('b', 0)],
      want: { remove: false, reason: 'EventsPending', message: /3 webhook events not yet acknowledged/ },
    },
    {
      name: 'every outbox read empty after the relays went quiet: the finalizer goes',
      pool: deleting(),
      relays: [quiet('a', 0), quiet('b', 0)],
      want: { remove: true, reason: 'Drained', message: /every webhook event acknowledged or handed on/ },
    },
    {
      name: 'the bound reached with events unsent: the finalizer goes, EventsAbandoned with the count',
      pool: deleting('Drain', '1h'),
      relays: [quiet('a', 3)],
      now: Date.parse(DELETED_AT) + 3_600_000,
      want: { remove: true, reason: 'EventsAbandoned', message: /3 events known unsent are lost/ },
    },
    {
      name: 'Discard (the escape hatch) while events are pending: the finalizer goes at once',
      pool: deleting('Discard'),
      relays: [quiet('a', 3)],
      trackerPods: ['transactional-tracker-x'],
      want: { remove: true, reason: 'Discarding', message: /deleted with whatever they hold/ },
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const d = deletionDecision(c.pool, c.relays, undefined, {
        trackerPods: c.trackerPods ?? [],
        now: c.now ?? AFTER,
      });
      assert.deepEqual(d.finalizer, c.want.remove ? { remove: DRAIN_FINALIZER } : undefined);
      assert.equal(d.condition?.reason, c.want.reason);
      assert.match(d.condition?.message ?? '', c.want.message);
      assert.equal(d.requeueAfterMs !== undefined, !c.want.remove, 'requeued while it waits');
      if (!c.want.remove && c.want.reason !== 'DrainingQueue')
        assert.match(d.condition?.message ?? '', /"deletionPolicy":"Discard"/, 'the escape hatch is named');
    });
});
