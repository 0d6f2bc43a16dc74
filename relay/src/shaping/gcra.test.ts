import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gcraDecide, gcraRate, sharedBackoffAfter, type GcraRate } from './gcra.ts';

const per = (messages: number, periodMs: number, burst = 1): GcraRate =>
  gcraRate({ messages, periodMs, burst });

describe('GCRA rate', () => {
  const cases: { name: string; rate: GcraRate; interval: number; tolerance: number }[] = [
    {
      name: '30/s with burst 1: one every 33.3 ms, no tolerance',
      rate: per(30, 1000),
      interval: 1000 / 30,
      tolerance: 0,
    },
    {
      name: '10/min with burst 5: one every 6 s, 24 s early',
      rate: per(10, 60_000, 5),
      interval: 6000,
      tolerance: 24_000,
    },
    {
      name: 'backed off to half: one every 200 ms instead of 100, burst 4 becomes 2',
      rate: gcraRate({ messages: 10, periodMs: 1000, burst: 4 }, 0.5),
      interval: 200,
      tolerance: 200,
    },
    {
      name: 'backed off to 1/64 with burst 1: the burst stays 1',
      rate: gcraRate({ messages: 10, periodMs: 1000, burst: 1 }, 1 / 64),
      interval: 6400,
      tolerance: 0,
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      assert.equal(c.rate.intervalMs, c.interval);
      assert.equal(c.rate.toleranceMs, c.tolerance);
    });
});

describe('shared backoff factor kept by the store', () => {
  const cases: {
    name: string;
    stored: number | undefined;
    seen: number;
    next: number;
    after: number | undefined;
  }[] = [
    { name: 'the first relay to see throttling sets it', stored: undefined, seen: 1, next: 0.5, after: 0.5 },
    { name: 'a further slow-down lands', stored: 0.5, seen: 0.5, next: 0.25, after: 0.25 },
    {
      name: 'two relays slowing down from the same factor count once',
      stored: 0.5,
      seen: 1,
      next: 0.5,
      after: 0.5,
    },
    { name: 'a slow-down never raises a lower factor', stored: 0.25, seen: 1, next: 0.5, after: 0.25 },
    {
      name: 'a recovery step from what the store holds lands',
      stored: 0.5,
      seen: 0.5,
      next: 0.75,
      after: 0.75,
    },
    { name: 'recovered to normal: the key goes', stored: 0.75, seen: 0.75, next: 1, after: undefined },
    {
      name: 'a recovery does not undo a newer slow-down by another relay',
      stored: 0.25,
      seen: 0.5,
      next: 0.75,
      after: 0.25,
    },
    {
      name: 'a recovery of a factor that expired meanwhile leaves it expired',
      stored: undefined,
      seen: 0.5,
      next: 0.75,
      after: undefined,
    },
  ];
  for (const c of cases)
    test(c.name, () => assert.equal(sharedBackoffAfter(c.stored, c.seen, c.next), c.after));
});

describe('GCRA decision', () => {
  const tenPerSecond = per(10, 1000);
  const cases: {
    name: string;
    tats: (number | undefined)[];
    rates: GcraRate[];
    now: number;
    horizonMs?: number;
    allowed: boolean;
    waitMs?: number;
    delayMs?: number;
    after: (number | undefined)[];
  }[] = [
    {
      name: 'a destination never seen is allowed and due one interval later',
      tats: [undefined],
      rates: [tenPerSecond],
      now: 5000,
      allowed: true,
      after: [5100],
    },
    {
      name: 'a message before its due time waits until then and changes nothing',
      tats: [5100],
      rates: [tenPerSecond],
      now: 5040,
      allowed: false,
      waitMs: 60,
      after: [5100],
    },
    {
      name: 'a message exactly on time is allowed',
      tats: [5100],
      rates: [tenPerSecond],
      now: 5100,
      allowed: true,
      after: [5200],
    },
    {
      name: 'a message a little late keeps the schedule (the lateness is caught up)',
      tats: [5100],
      rates: [tenPerSecond],
      now: 5130,
      allowed: true,
      after: [5200],
    },
    {
      name: 'after a full idle interval the schedule starts afresh',
      tats: [5100],
      rates: [tenPerSecond],
      now: 5200,
      allowed: true,
      after: [5300],
    },
    {
      name: 'burst 3: a third message at the same instant is allowed, a fourth waits one interval',
      tats: [5200],
      rates: [per(10, 1000, 3)],
      now: 5000,
      allowed: true,
      after: [5300],
    },
    {
      name: 'burst 3: the fourth message at the same instant waits',
      tats: [5300],
      rates: [per(10, 1000, 3)],
      now: 5000,
      allowed: false,
      waitMs: 100,
      after: [5300],
    },
    {
      name: 'two limits: allowed when both admit, both move on',
      tats: [5000, undefined],
      rates: [tenPerSecond, per(1, 1000)],
      now: 5000,
      allowed: true,
      after: [5100, 6000],
    },
    {
      name: 'two limits: one refusing holds both, the wait is the refusing one’s',
      tats: [undefined, 6000],
      rates: [tenPerSecond, per(1, 1000)],
      now: 5250,
      allowed: false,
      waitMs: 750,
      after: [undefined, 6000],
    },
    {
      name: 'a fractional wait is rounded up to a whole millisecond',
      tats: [5033.334],
      rates: [per(30, 1000)],
      now: 5000,
      allowed: false,
      waitMs: 34,
      after: [5033.334],
    },
    {
      name: 'within the horizon the slot is booked ahead: allowed, to start when it is due',
      tats: [5100],
      rates: [tenPerSecond],
      now: 5040,
      horizonMs: 100,
      allowed: true,
      delayMs: 60,
      after: [5200],
    },
    {
      name: 'beyond the horizon: wait until the slot is within it',
      tats: [5300],
      rates: [tenPerSecond],
      now: 5040,
      horizonMs: 100,
      allowed: false,
      waitMs: 160,
      after: [5300],
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const d = gcraDecide(c.tats, c.rates, c.now, c.horizonMs);
      assert.equal(d.allowed, c.allowed);
      if (!d.allowed) assert.equal(d.waitMs, c.waitMs);
      else assert.equal(d.delayMs, c.delayMs ?? 0);
      assert.deepEqual(d.tats, c.after);
    });

  test('three relays asking on their own, late by up to 5 ms, hold 30/s over 100 s exactly', () => {
    assert.ok(Math.abs(simulate(5, 0) - 3000) <= 1);
  });

  test('timers late by up to 100 ms (a busy node): booking ahead keeps the rate, asking on time loses it', () => {
    const booked = simulate(100, 1000);
    const unbooked = simulate(100, 0);
    assert.ok(Math.abs(booked - 3000) <= 3, `booked ahead: ${booked}`);
    assert.ok(unbooked < 3000 * 0.9, `without booking: ${unbooked}`);
  });
});

/**
 * Three relays sharing a 30/s limit for 100 s: each asks, and asks again once its booked slot
 * came (or it was told to wait), late by a random amount up to `lateMs` (timers, the round trip).
 * Seeded, so every run is the same. Returns the messages admitted.
 */
function simulate(lateMs: number, horizonMs: number): number {
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const rate = per(30, 1000);
  let tats: (number | undefined)[] = [undefined];
  const next = [0, 1, 2];
  let admitted = 0;
  for (;;) {
    const relay = next.indexOf(Math.min(...next));
    const now = next[relay]!;
    if (now >= 100_000) break;
    const d = gcraDecide(tats, [rate], now, horizonMs);
    tats = d.tats;
    if (d.allowed) admitted++;
    next[relay] = now + (d.allowed ? d.delayMs : d.waitMs) + random() * lateMs;
  }
  return admitted;
}
