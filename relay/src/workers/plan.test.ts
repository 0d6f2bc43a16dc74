import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../config/validate.ts';
import { compileLimits } from '../shaping/plan.ts';
import { resize, shardIndexes, splitOf, workerConfig, workerCount } from './plan.ts';

function configOf(raw: Record<string, unknown>) {
  const result = validateConfig({ spool: { dir: '/spool' }, ...raw });
  if (!result.ok) assert.fail(JSON.stringify(result.errors));
  return result.config;
}

const limit = (over: Record<string, unknown>) => ({
  name: 'gmail',
  match: { recipientDomains: ['gmail.com'] },
  rate: { messages: 100, per: 'minute' },
  ...over,
});

describe('workerCount', () => {
  const cases: { name: string; raw: Record<string, unknown>; count: number; cappedBy?: string }[] = [
    { name: 'the default is one process', raw: {}, count: 1 },
    { name: 'four workers when every limit allows four', raw: { workers: 4 }, count: 4 },
    {
      name: 'a per-destination connection cap of 2 allows two workers',
      raw: { workers: 4, delivery: { maxConnectionsPerDestination: 2 } },
      count: 2,
      cappedBy: 'delivery.maxConnectionsPerDestination',
    },
    {
      name: 'a rate limit with a burst of 1 keeps one worker',
      raw: { workers: 2, rateLimits: [limit({ burst: 1 })] },
      count: 1,
      cappedBy: 'rateLimits[gmail].burst',
    },
    {
      name: "a Pool limit's share lowers what its connections allow",
      raw: { workers: 4, rateLimits: [limit({ maxConnections: 6, share: 0.5 })] },
      count: 3,
      cappedBy: 'rateLimits[gmail].maxConnections',
    },
    {
      name: 'an AUTH failure limit of 3 allows three workers',
      raw: { workers: 8, auth: { throttle: { maxFailures: 3 } } },
      count: 3,
      cappedBy: 'auth.throttle.maxFailures',
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const got = workerCount(configOf(c.raw));
      assert.equal(got.count, c.count);
      assert.equal(got.cappedBy, c.cappedBy);
    });
});

describe('splitOf', () => {
  const cases: { value: number; count: number; parts: number[] }[] = [
    { value: 500, count: 2, parts: [250, 250] },
    { value: 5, count: 2, parts: [3, 2] },
    { value: 7, count: 3, parts: [3, 2, 2] },
    { value: 2, count: 2, parts: [1, 1] },
  ];
  for (const c of cases)
    test(`${c.value} over ${c.count} workers is ${c.parts.join(' + ')}`, () => {
      const parts = Array.from({ length: c.count }, (_, index) =>
        splitOf(c.value, { index, count: c.count }),
      );
      assert.deepEqual(parts, c.parts);
      assert.equal(
        parts.reduce((a, b) => a + b, 0),
        c.value,
      );
    });
});

describe('workerConfig', () => {
  test('one worker runs the config unchanged', () => {
    const config = configOf({ workers: 1 });
    assert.equal(workerConfig(config, { index: 0, count: 1 }), config);
  });

  test('worker 0 keeps the spool directory; others get a shard inside it and their own journals', () => {
    const config = configOf({
      workers: 2,
      events: { url: 'http://127.0.0.1:1/', secretFile: '/s' },
    });
    const [first, second] = [0, 1].map((index) => workerConfig(config, { index, count: 2 }));
    assert.equal(first!.spool.dir, '/spool');
    assert.equal(second!.spool.dir, '/spool/shard-1');
    assert.equal(first!.suppression.file, '/spool/suppression.jsonl');
    assert.equal(second!.suppression.file, '/spool/suppression.jsonl-shard-1');
    assert.equal(first!.events?.dir, '/spool/events');
    assert.equal(second!.events?.dir, '/spool/events-shard-1');
  });

  test('the workers together enforce each limit once, not once each', () => {
    const config = configOf({
      workers: 3,
      limits: { maxConnections: 500, maxConnectionsPerClient: 50 },
      auth: { throttle: { maxFailures: 5 } },
      delivery: { maxConnections: 100, maxConnectionsPerDestination: 10 },
      spool: { dir: '/spool', maxBytes: 3000 },
      rateLimits: [limit({ burst: 30, maxConnections: 9 })],
    });
    const workers = [0, 1, 2].map((index) => workerConfig(config, { index, count: 3 }));
    const sum = (f: (c: (typeof workers)[number]) => number) => workers.reduce((a, c) => a + f(c), 0);
    assert.equal(
      sum((c) => c.limits.maxConnections),
      500,
    );
    assert.equal(
      sum((c) => c.limits.maxConnectionsPerClient),
      50,
    );
    assert.equal(
      sum((c) => c.auth.throttle.maxFailures),
      5,
    );
    assert.equal(
      sum((c) => c.delivery.maxConnections),
      100,
    );
    assert.equal(
      sum((c) => c.delivery.maxConnectionsPerDestination),
      10,
    );
    assert.equal(
      sum((c) => c.spool.maxBytes),
      3000,
    );
    // The shaper's view: 100/min split into three buckets of 100 per 3 minutes, burst 10, 3 connections.
    const compiled = workers.map((c) => compileLimits(c.rateLimits)[0]!);
    const perMinute = compiled.reduce((a, l) => a + (l.rate!.messages * 60_000) / l.rate!.periodMs, 0);
    assert.ok(Math.abs(perMinute - 100) < 1e-9, `workers admit ${perMinute}/min together`);
    assert.equal(
      compiled.reduce((a, l) => a + l.rate!.burst, 0),
      30,
    );
    assert.equal(
      compiled.reduce((a, l) => a + l.maxConnections!, 0),
      9,
    );
  });
});

describe('resize', () => {
  const cases: {
    name: string;
    running: number;
    started: number;
    raw: Record<string, unknown>;
    count: number;
    retire: number[];
    fork: number[];
  }[] = [
    {
      name: 'a reload that changes no limit keeps the workers',
      running: 3,
      started: 3,
      raw: { workers: 3 },
      count: 3,
      retire: [],
      fork: [],
    },
    {
      name: 'a connection limit lowered to 1 retires every worker but the first, highest first',
      running: 3,
      started: 3,
      raw: { workers: 3, limits: { maxConnections: 1 } },
      count: 1,
      retire: [2, 1],
      fork: [],
    },
    {
      name: 'a per-destination cap of 2 under four workers retires two',
      running: 4,
      started: 4,
      raw: { workers: 4, delivery: { maxConnectionsPerDestination: 2 } },
      count: 2,
      retire: [3, 2],
      fork: [],
    },
    {
      name: 'the limit raised again forks the retired workers back',
      running: 1,
      started: 3,
      raw: { workers: 3 },
      count: 3,
      retire: [],
      fork: [1, 2],
    },
    {
      name: 'never more workers than the relay started with',
      running: 2,
      started: 2,
      raw: { workers: 8 },
      count: 2,
      retire: [],
      fork: [],
    },
    {
      name: 'the workers setting lowered on reload retires the ones above it',
      running: 4,
      started: 4,
      raw: { workers: 3 },
      count: 3,
      retire: [3],
      fork: [],
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const got = resize(c.running, c.started, configOf(c.raw));
      assert.equal(got.count, c.count);
      assert.deepEqual(got.retire, c.retire);
      assert.deepEqual(got.fork, c.fork);
    });

  test('after a resize each limit is split into parts of at least one that add up to it', () => {
    const config = configOf({ workers: 4, limits: { maxConnections: 2 }, delivery: { maxConnections: 3 } });
    const { count } = resize(4, 4, config);
    const workers = Array.from({ length: count }, (_, index) => workerConfig(config, { index, count }));
    assert.deepEqual(
      workers.map((w) => w.limits.maxConnections),
      [1, 1],
    );
    assert.equal(
      workers.reduce((a, w) => a + w.delivery.maxConnections, 0),
      3,
    );
  });

  test('a retiring worker reloading with the old count gets none of a limit below the count', () => {
    const config = configOf({ workers: 2, limits: { maxConnections: 1 } });
    const parts = [0, 1].map((index) => workerConfig(config, { index, count: 2 }).limits.maxConnections);
    assert.deepEqual(parts, [1, 0]);
  });
});

describe('shardIndexes', () => {
  test('only shard-<k> directories count, in order', () => {
    assert.deepEqual(shardIndexes(['queue', 'shard-3', 'journal', 'shard-1', 'shard-0', 'shard-x']), [1, 3]);
  });
});
