import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Bucket, BucketRate } from './bucket.ts';
import { convert, fullBucket, readyAt, scaleRate, take } from './bucket.ts';

/**
 * Sends as fast as the bucket admits from t=0 to `until` and returns the admission times; a caller
 * that waits wakes `lateMs` after the readyAt it was given.
 */
function drive(rate: BucketRate, until: number, lateMs = 0): number[] {
  let bucket: Bucket = fullBucket(rate, 0);
  const times: number[] = [];
  let now = 0;
  while (now <= until) {
    const result = take(bucket, rate, now);
    bucket = result.bucket;
    if (result.admitted) times.push(now);
    else now = result.readyAt + lateMs;
  }
  return times;
}

describe('token bucket', () => {
  test('10/s with burst 1 admits exactly one message every 100 ms', () => {
    const times = drive({ messages: 10, periodMs: 1_000, burst: 1 }, 10_000);
    assert.equal(times.length, 101);
    assert.deepEqual(times.slice(0, 4), [0, 100, 200, 300]);
  });
  test('a burst goes at once, then the rate applies', () => {
    const times = drive({ messages: 10, periodMs: 1_000, burst: 5 }, 1_000);
    assert.deepEqual(times.slice(0, 6), [0, 0, 0, 0, 0, 100]);
    assert.equal(times.length, 15);
  });
  test('3 per hour admits at 0, 20 and 40 minutes', () => {
    const times = drive({ messages: 3, periodMs: 3_600_000, burst: 1 }, 3_600_000);
    assert.deepEqual(times, [0, 1_200_000, 2_400_000, 3_600_000]);
  });
  test('7 per second never drifts: 700 messages in 100 seconds (+1 at t=0)', () => {
    assert.equal(drive({ messages: 7, periodMs: 1_000, burst: 1 }, 100_000).length, 701);
  });
  test('a refused take says exactly when the next message may go', () => {
    const rate = { messages: 1, periodMs: 1_000, burst: 1 };
    const first = take(fullBucket(rate, 0), rate, 0);
    assert.equal(first.admitted, true);
    const second = take(first.bucket, rate, 250);
    assert.deepEqual(second.admitted ? null : second.readyAt, 1_000);
    assert.equal(readyAt(first.bucket, rate, 999), 1_000);
    assert.equal(readyAt(first.bucket, rate, 1_000), 1_000);
  });
  test('an idle bucket refills only up to its burst', () => {
    const rate = { messages: 10, periodMs: 1_000, burst: 2 };
    let bucket = fullBucket(rate, 0);
    bucket = (take(bucket, rate, 0) as { bucket: Bucket }).bucket;
    bucket = (take(bucket, rate, 0) as { bucket: Bucket }).bucket;
    const later = [take(bucket, rate, 60_000)];
    const b2 = later[0]!.bucket;
    const third = take(b2, rate, 60_000);
    const fourth = take(third.bucket, rate, 60_000);
    assert.deepEqual([later[0]!.admitted, third.admitted, fourth.admitted], [true, true, false]);
  });
});

describe('scaleRate', () => {
  const cases: Array<[string, BucketRate, number, BucketRate]> = [
    [
      'a factor of 1 keeps the rate',
      { messages: 10, periodMs: 1_000, burst: 10 },
      1,
      { messages: 10, periodMs: 1_000, burst: 10 },
    ],
    [
      'half of 10/s is 5/s',
      { messages: 10, periodMs: 1_000, burst: 10 },
      0.5,
      { messages: 5, periodMs: 1_000, burst: 5 },
    ],
    [
      'a third of 10/s stretches the period',
      { messages: 10, periodMs: 1_000, burst: 3 },
      1 / 3,
      { messages: 10, periodMs: 3_000, burst: 1 },
    ],
    [
      'half of 1/s is 1 per 2 s',
      { messages: 1, periodMs: 1_000, burst: 1 },
      0.5,
      { messages: 1, periodMs: 2_000, burst: 1 },
    ],
  ];
  for (const [name, rate, factor, expected] of cases)
    test(name, () => assert.deepEqual(scaleRate(rate, factor), expected));
});

describe('convert', () => {
  test('a debt of 500 ms at 10/s stays a debt of 500 ms at 2/s', () => {
    const from = { messages: 10, periodMs: 1_000, burst: 1 };
    const to = { messages: 2, periodMs: 1_000, burst: 1 };
    const bucket = { origin: 0, tat: 5_000 }; // 5000 units of 1/10 ms = 500 ms
    const converted = convert(bucket, from, to);
    assert.equal(converted.tat, 1_000); // 1000 units of 1/2 ms = 500 ms
    assert.equal(readyAt(converted, to, 0), 500);
  });
});

describe('late wake-ups', () => {
  const late: Array<[string, number, number]> = [
    ['a caller that always wakes 13 ms late still gets 10/s with burst 1', 13, 600],
    ['a caller that wakes 80 ms late every time (most of an interval) still gets 10/s', 80, 595],
  ];
  for (const [name, lateMs, atLeast] of late) {
    test(name, () => {
      const admitted = drive({ messages: 10, periodMs: 1_000, burst: 1 }, 60_000, lateMs).length;
      assert.ok(admitted >= atLeast && admitted <= 602, `admitted ${admitted}`);
    });
  }
  test('the catch-up never lets two messages of a burst-1 limit go at the same instant', () => {
    const rate = { messages: 10, periodMs: 1_000, burst: 1 };
    const first = take(fullBucket(rate, 0), rate, 0);
    const late = take(first.bucket, rate, 140); // 40 ms late
    assert.equal(late.admitted, true);
    const again = take(late.bucket, rate, 140);
    assert.equal(again.admitted, false);
    assert.equal(again.admitted ? 0 : again.readyAt, 200);
  });
  test('after a whole interval of idleness the bucket is simply full again', () => {
    const rate = { messages: 10, periodMs: 1_000, burst: 1 };
    const first = take(fullBucket(rate, 0), rate, 0);
    const idle = take(first.bucket, rate, 250); // 150 ms after readyAt: no catch-up credit kept
    const next = take(idle.bucket, rate, 250);
    assert.equal(next.admitted ? 0 : next.readyAt, 350);
  });
});
