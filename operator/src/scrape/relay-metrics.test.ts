import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  increase,
  intakeClosedSince,
  parseRelayMetrics,
  poolMeasurement,
  poolOutcomes,
  quietSince,
} from './relay-metrics.ts';
import type { RelaySample } from './relay-metrics.ts';

const sample = (at: number, start: number | undefined, delivered: number, bounced: number): RelaySample => {
  const s: RelaySample = { at, outcomes: new Map([['a.com', { delivered, bounced }]]) };
  if (start !== undefined) s.start = start;
  return s;
};

test('parsing a relay /metrics page', () => {
  const text = [
    '# HELP mailfleet_relay_recipients_delivered_total Recipients delivered',
    '# TYPE mailfleet_relay_recipients_delivered_total counter',
    'mailfleet_relay_recipients_delivered_total{sending_domain="a.com",destination="x.org"} 7',
    'mailfleet_relay_recipients_delivered_total{sending_domain="a.com",destination="y.org"} 3',
    'mailfleet_relay_recipients_bounced_total{sending_domain="a.com",category="user"} 2',
    'mailfleet_relay_recipients_bounced_total{sending_domain="b.com",category="policy"} 1',
    'mailfleet_relay_recipients_deferred_total{sending_domain="a.com"} 50',
    'mailfleet_relay_process_start_time_seconds 1700000000',
  ].join('\n');
  const s = parseRelayMetrics(text, 5);
  assert.equal(s.at, 5);
  assert.equal(s.start, 1_700_000_000_000);
  assert.deepEqual(s.outcomes.get('a.com'), { delivered: 10, bounced: 2 });
  assert.deepEqual(s.outcomes.get('b.com'), { delivered: 0, bounced: 1 });
});

test("the queue a relay reports: its jobs in every state, unknown without the relay's queue gauges", async (t) => {
  const cases: { name: string; lines: string[]; queued: number | undefined }[] = [
    {
      name: 'jobs in several states and domains are summed',
      lines: [
        'mailfleet_relay_queue_jobs{state="deferred",sending_domain="a.com"} 40',
        'mailfleet_relay_queue_jobs{state="ready",sending_domain="b.com"} 2',
        'mailfleet_relay_queue_oldest_message_age_seconds 12.5',
      ],
      queued: 42,
    },
    { name: 'an empty queue', lines: ['mailfleet_relay_queue_oldest_message_age_seconds 0'], queued: 0 },
    {
      name: 'no jobs but a queued message still has an age: not empty',
      lines: ['mailfleet_relay_queue_oldest_message_age_seconds 3'],
      queued: 1,
    },
    {
      name: 'a page without the queue gauges says nothing about a queue',
      lines: ['mailfleet_relay_process_start_time_seconds 1700000000'],
      queued: undefined,
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => assert.equal(parseRelayMetrics(c.lines.join('\n'), 1).queued, c.queued));
});

test('whether a relay reaches the shared store: its gauge, absent without one', async (t) => {
  const cases: { name: string; lines: string[]; up: boolean | undefined }[] = [
    { name: 'store up', lines: ['mailfleet_relay_shared_state_up 1'], up: true },
    { name: 'store down', lines: ['mailfleet_relay_shared_state_up 0'], up: false },
    {
      name: 'no shared state configured',
      lines: ['mailfleet_relay_queue_oldest_message_age_seconds 0'],
      up: undefined,
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => assert.equal(parseRelayMetrics(c.lines.join('\n'), 1).sharedStateUp, c.up));
});

test('whether a relay may still acknowledge mail: its intake gauge, absent on a relay without it', async (t) => {
  const cases: { name: string; lines: string[]; open: boolean | undefined }[] = [
    { name: 'open', lines: ['mailfleet_relay_intake_open 1'], open: true },
    { name: 'closed', lines: ['mailfleet_relay_intake_open 0'], open: false },
    { name: 'an older relay without the gauge', lines: ['mailfleet_relay_ready 1'], open: undefined },
  ];
  for (const c of cases)
    await t.test(c.name, () => assert.equal(parseRelayMetrics(c.lines.join('\n'), 1).intakeOpen, c.open));
});

test('since when a relay reports its intake closed: the start of its last run of closed readings', async (t) => {
  const reading = (at: number, intakeOpen?: boolean): RelaySample =>
    intakeOpen === undefined ? { at, outcomes: new Map() } : { at, outcomes: new Map(), intakeOpen };
  const cases: { name: string; samples: RelaySample[]; since: number | undefined }[] = [
    { name: 'never scraped', samples: [], since: undefined },
    { name: 'open at the last scrape', samples: [reading(1, false), reading(2, true)], since: undefined },
    { name: 'closed once: since that scrape', samples: [reading(1, true), reading(2, false)], since: 2 },
    {
      name: 'closed for three scrapes: since the first of them',
      samples: [reading(1, true), reading(2, false), reading(3, false), reading(4, false)],
      since: 2,
    },
    {
      name: 'opened in between: the run starts over',
      samples: [reading(1, false), reading(2, true), reading(3, false)],
      since: 3,
    },
    {
      name: 'a reading without the gauge breaks the run',
      samples: [reading(1, false), reading(2), reading(3, false)],
      since: 3,
    },
    { name: 'a relay without the gauge', samples: [reading(1), reading(2)], since: undefined },
  ];
  for (const c of cases) await t.test(c.name, () => assert.equal(intakeClosedSince(c.samples), c.since));
});

test('increase of one relay over a window', async (t) => {
  const cases: { name: string; samples: RelaySample[]; windowStart: number; want: [number, number] }[] = [
    {
      name: 'deltas from the last sample before the window',
      samples: [sample(0, -100, 10, 1), sample(100, -100, 20, 2), sample(200, -100, 25, 8)],
      windowStart: 150,
      want: [5, 6],
    },
    {
      name: 'a process started inside the window counts from zero',
      samples: [sample(100, 90, 4, 6)],
      windowStart: 50,
      want: [4, 6],
    },
    {
      name: 'a process started before the window, first seen now: unknown origin, nothing counted',
      samples: [sample(100, 10, 4, 6)],
      windowStart: 50,
      want: [0, 0],
    },
    {
      name: 'a restart adds the new process counts',
      samples: [sample(60, 0, 10, 0), sample(120, 100, 3, 2)],
      windowStart: 50,
      want: [3, 2],
    },
    {
      name: 'counters that go down without a start time are a restart',
      samples: [sample(60, undefined, 10, 5), sample(120, undefined, 2, 1)],
      windowStart: 0,
      want: [0, 0],
    },
    {
      name: 'samples all older than the window: nothing',
      samples: [sample(10, 0, 10, 5), sample(20, 0, 20, 9)],
      windowStart: 50,
      want: [0, 0],
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const got = increase(c.samples, 'a.com', c.windowStart);
      assert.deepEqual([got.delivered, got.bounced], c.want);
    });
});

test('a pool measurement sums its relays', () => {
  const relays = [
    [sample(0, 0, 0, 0), sample(100, 0, 40, 10)],
    [sample(0, 0, 5, 0), sample(100, 0, 45, 0)],
  ];
  assert.deepEqual(poolMeasurement(relays, 'a.com', 0), { bounced: 10, total: 90 });
  assert.deepEqual(poolMeasurement(relays, 'other.com', 0), { bounced: 0, total: 0 });
  assert.equal(poolMeasurement([], 'a.com', 0), undefined);
});

test('async hard bounces and complaints are read from the feedback counter and summed over the pool', () => {
  const text = (hard: number, complaints: number) =>
    [
      'mailfleet_relay_process_start_time_seconds 1',
      'mailfleet_relay_recipients_delivered_total{sending_domain="a.com",destination="x"} 100',
      `mailfleet_relay_feedback_reports_total{sending_domain="a.com",kind="hard-bounce",category="bad-mailbox"} ${hard}`,
      `mailfleet_relay_feedback_reports_total{sending_domain="a.com",kind="complaint",category="abuse"} ${complaints}`,
      'mailfleet_relay_feedback_reports_total{sending_domain="a.com",kind="delayed",category="other"} 9',
    ].join('\n');
  const relay = (at: number, hard: number, complaints: number) =>
    parseRelayMetrics(text(hard, complaints), at);
  assert.deepEqual(relay(0, 2, 1).outcomes.get('a.com'), {
    delivered: 100,
    bounced: 0,
    asyncBounced: 2,
    complaints: 1,
  });
  const relays = [
    [relay(0, 1, 0), relay(10, 4, 2)],
    [relay(0, 0, 0), relay(10, 1, 1)],
  ];
  assert.deepEqual(poolMeasurement(relays, 'a.com', 5), {
    bounced: 0,
    total: 0,
    asyncBounced: 4,
    complaints: 3,
  });
});

test("the events webhook's backlog age is read when the relay exports it, absent otherwise", () => {
  const page = [
    '# TYPE mailfleet_relay_events_oldest_age_seconds gauge',
    'mailfleet_relay_events_oldest_age_seconds 42.5',
  ].join('\n');
  assert.equal(parseRelayMetrics(page, 0).eventsOldest, 42.5);
  assert.equal(parseRelayMetrics('mailfleet_relay_queue_jobs{state="ready"} 1', 0).eventsOldest, undefined);
});

test("the events outbox's unsent count is read from a relay's or a tracker's page, absent without spec.events", () => {
  assert.equal(parseRelayMetrics('mailfleet_relay_events_outbox_events 17', 0).eventsUnsent, 17);
  assert.equal(parseRelayMetrics('mailfleet_tracker_events_outbox_events 0', 0).eventsUnsent, 0);
  assert.equal(parseRelayMetrics('mailfleet_relay_events_outbox_bytes 4096', 0).eventsUnsent, undefined);
});

test('since when a relay is quiet (intake closed, queue empty, no tracker pod): the start of that run', async (t) => {
  const reading = (
    at: number,
    o: { open?: boolean; queued?: number; tracker?: boolean } = {},
  ): RelaySample => ({
    at,
    outcomes: new Map(),
    intakeOpen: o.open ?? false,
    queued: o.queued ?? 0,
    trackerPods: o.tracker ?? false,
  });
  const cases: { name: string; samples: RelaySample[]; since: number | undefined }[] = [
    { name: 'never scraped', samples: [], since: undefined },
    { name: 'quiet from the first reading', samples: [reading(1), reading(2)], since: 1 },
    {
      name: 'a tracker pod at the last reading',
      samples: [reading(1), reading(2, { tracker: true })],
      since: undefined,
    },
    {
      name: 'the tracker pod gone: from that reading',
      samples: [reading(1, { tracker: true }), reading(2)],
      since: 2,
    },
    {
      name: 'mail queued in between: the run starts over',
      samples: [reading(1), reading(2, { queued: 1 }), reading(3)],
      since: 3,
    },
    { name: 'intake open: not quiet', samples: [reading(1, { open: true })], since: undefined },
    {
      name: 'a reading without the tracker flag (the scraper always sets it) is not quiet',
      samples: [{ at: 1, outcomes: new Map(), intakeOpen: false, queued: 0 }],
      since: undefined,
    },
  ];
  for (const c of cases) await t.test(c.name, () => assert.equal(quietSince(c.samples), c.since));
});

test("a tracker's page: human unique opens, opens and clicks per domain, machine reads left out, its process start", () => {
  const text = [
    'mailfleet_tracker_unique_opens_total{sending_domain="a.com",reader="human"} 3',
    'mailfleet_tracker_unique_opens_total{sending_domain="a.com",reader="machine"} 8',
    'mailfleet_tracker_opens_total{sending_domain="a.com",reader="human"} 4',
    'mailfleet_tracker_opens_total{sending_domain="a.com",reader="machine"} 9',
    'mailfleet_tracker_clicks_total{sending_domain="a.com",reader="human"} 2',
    'mailfleet_tracker_clicks_total{sending_domain="b.com",reader="machine"} 5',
    'mailfleet_tracker_refused_total{reason="bad_token"} 3',
    'mailfleet_tracker_process_start_time_seconds 1700000100',
  ].join('\n');
  const s = parseRelayMetrics(text, 1);
  assert.equal(s.start, 1_700_000_100_000);
  assert.deepEqual(s.outcomes.get('a.com'), {
    delivered: 0,
    bounced: 0,
    opens: 3,
    totalOpens: 4,
    clicks: 2,
  });
  assert.equal(s.outcomes.get('b.com'), undefined, 'only machine reads: nothing counted');
  assert.equal(s.queued, undefined, 'a tracker has no queue');
});

test("a pool's counts add its relays' outcomes and its trackers' reads over the window", () => {
  const page = (at: number, lines: string[]) => parseRelayMetrics(lines.join('\n'), at);
  const relay = [
    page(0, [
      'mailfleet_relay_process_start_time_seconds 0',
      'mailfleet_relay_recipients_delivered_total{sending_domain="a.com"} 5',
    ]),
    page(10_000, [
      'mailfleet_relay_process_start_time_seconds 0',
      'mailfleet_relay_recipients_delivered_total{sending_domain="a.com"} 25',
      'mailfleet_relay_recipients_bounced_total{sending_domain="a.com",category="user"} 5',
    ]),
  ];
  const tracker = (n: number) => [
    page(0, ['mailfleet_tracker_process_start_time_seconds 0']),
    page(10_000, [
      'mailfleet_tracker_process_start_time_seconds 0',
      `mailfleet_tracker_unique_opens_total{sending_domain="a.com",reader="human"} ${n}`,
      `mailfleet_tracker_opens_total{sending_domain="a.com",reader="human"} ${n + 1}`,
      `mailfleet_tracker_clicks_total{sending_domain="a.com",reader="human"} 1`,
    ]),
  ];
  assert.deepEqual(poolOutcomes([relay, tracker(3), tracker(4)], 'a.com', 0), {
    delivered: 20,
    bounced: 5,
    opens: 7,
    totalOpens: 9,
    clicks: 2,
  });
  assert.equal(poolOutcomes([[], []], 'a.com', 0), undefined, 'never scraped: no counts');
});
