import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextPostAt } from './retry.ts';

const T0 = Date.parse('2026-12-05T00:10:00Z');
const MIN = 60_000;

const CASES: { name: string; attempts: number; now: number; want: number | undefined }[] = [
  { name: 'the first failure: again in 5 minutes', attempts: 1, now: T0, want: T0 + 5 * MIN },
  { name: 'the second: 10 minutes', attempts: 2, now: T0 + 5 * MIN, want: T0 + 15 * MIN },
  { name: 'the fourth: 40 minutes', attempts: 4, now: T0, want: T0 + 40 * MIN },
  { name: 'never more than 2 hours apart', attempts: 9, now: T0 + 3600_000, want: T0 + 3 * 3600_000 },
  { name: 'still within the day: tried', attempts: 12, now: T0 + 21 * 3600_000, want: T0 + 23 * 3600_000 },
  {
    name: 'past a day after the first POST: given up',
    attempts: 13,
    now: T0 + 23 * 3600_000,
    want: undefined,
  },
];

for (const c of CASES)
  test(`nextPostAt: ${c.name}`, () => {
    assert.equal(nextPostAt({ attempts: c.attempts, firstAt: T0 }, c.now), c.want);
  });
