import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AnvilPolicy, FailureCounter } from './anvil.ts';
import { afterFailure, combine, prune, verdict } from './anvil.ts';

const policy: AnvilPolicy = {
  maxFailures: 3,
  windowMs: 60_000,
  lockoutMs: 300_000,
  baseDelayMs: 1_000,
  maxDelayMs: 4_000,
};

function fail(times: number, start = 0, step = 1_000): FailureCounter | undefined {
  let counter: FailureCounter | undefined;
  for (let i = 0; i < times; i++) counter = afterFailure(counter, start + i * step, policy);
  return counter;
}

describe('anvil', () => {
  test('a key without failures is neither delayed nor locked', () => {
    assert.deepEqual(verdict(undefined, 0, policy), { locked: false, delayMs: 0 });
  });
  test('each failure doubles the delay', () => {
    assert.deepEqual(verdict(fail(1), 1_000, policy), { locked: false, delayMs: 1_000 });
    assert.deepEqual(verdict(fail(2), 2_000, policy), { locked: false, delayMs: 2_000 });
  });
  test('the delay is capped', () => {
    const big: AnvilPolicy = { ...policy, maxFailures: 100 };
    let counter: FailureCounter | undefined;
    for (let i = 0; i < 10; i++) counter = afterFailure(counter, i, big);
    assert.deepEqual(verdict(counter, 10, big), { locked: false, delayMs: 4_000 });
  });
  test('the failure that fills the window locks the key for the lockout period', () => {
    const counter = fail(3);
    assert.deepEqual(verdict(counter, 2_000, policy), { locked: true, retryAfterMs: 300_000 });
    assert.deepEqual(verdict(counter, 302_000, policy), { locked: false, delayMs: 0 });
  });
  test('failures spread beyond the window do not lock', () => {
    const counter = fail(3, 0, 40_000);
    assert.equal(verdict(counter, 80_001, policy).locked, false);
  });
  test('failures while locked do not extend the lockout', () => {
    const locked = fail(3)!;
    assert.deepEqual(afterFailure(locked, 10_000, policy), locked);
  });
  test('the strictest verdict of IP and username wins', () => {
    assert.deepEqual(
      combine([
        { locked: false, delayMs: 1_000 },
        { locked: true, retryAfterMs: 5 },
      ]),
      { locked: true, retryAfterMs: 5 },
    );
    assert.deepEqual(
      combine([
        { locked: false, delayMs: 1_000 },
        { locked: false, delayMs: 2_000 },
      ]),
      { locked: false, delayMs: 2_000 },
    );
  });
  test('prune drops expired counters and keeps live ones', () => {
    const counters = new Map<string, FailureCounter>([
      ['ip:old', fail(1, 0)!],
      ['ip:recent', fail(1, 100_000)!],
      ['user:locked', fail(3, 0)!],
    ]);
    prune(counters, 120_000, policy);
    assert.deepEqual([...counters.keys()].sort(), ['ip:recent', 'user:locked']);
  });
});
