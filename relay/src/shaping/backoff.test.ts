import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AdaptiveBackoffPolicy, BackoffState } from './backoff.ts';
import { isThrottle, mode, normal, onSuccess, onThrottle } from './backoff.ts';
import { backoffPolicy } from './plan.ts';
import { DEFAULTS } from '../../../contract/defaults.ts';

// The relay's defaults (contract/defaults.ts), made quicker to step through.
const policy: AdaptiveBackoffPolicy = {
  ...backoffPolicy({
    ...DEFAULTS.adaptiveBackoff,
    enabled: true,
    throttlePatterns: [...DEFAULTS.adaptiveBackoff.throttlePatterns],
  }),
  successesPerStep: 3,
  holdMs: 1_000,
  minFactor: 0.125,
};

describe('isThrottle', () => {
  const cases: Array<[string, number, string | undefined, string, boolean]> = [
    ['421 service busy', 421, '4.3.2', 'Service not available', true],
    ['451 4.7.1 rate limited', 451, '4.7.1', 'Please slow down', true],
    ['450 with "try again later"', 450, '4.2.0', 'Mailbox busy, try again later', true],
    ['452 too many connections', 452, undefined, 'Too many connections from your IP', true],
    ['451 4.3.0 local problem', 451, '4.3.0', 'Local error in processing', false],
    ['550 rate limit wording on a permanent failure', 550, '5.7.1', 'rate limit exceeded', false],
    ['250 OK', 250, '2.0.0', 'Ok', false],
  ];
  for (const [name, code, enhanced, text, expected] of cases) {
    test(`${name} → ${expected}`, () => assert.equal(isThrottle(code, enhanced, text, policy), expected));
  }
});

describe('adaptive backoff', () => {
  test('a throttle halves the factor and enters backoff mode', () => {
    const s = onThrottle(normal, 0, policy);
    assert.deepEqual(s, { factor: 0.5, successes: 0, changedAt: 0 });
    assert.equal(mode(s), 'backoff');
  });
  test('throttles within the hold time count once', () => {
    const s = onThrottle(onThrottle(normal, 0, policy), 500, policy);
    assert.equal(s.factor, 0.5);
  });
  test('throttles after the hold time keep halving down to the floor', () => {
    let s: BackoffState = normal;
    for (let t = 0; t < 10_000; t += 1_000) s = onThrottle(s, t, policy);
    assert.equal(s.factor, 0.125);
  });
  test('recovery goes one step per run of successes, then back to normal', () => {
    let s = onThrottle(onThrottle(normal, 0, policy), 1_000, policy); // 0.25
    const factors: number[] = [];
    for (let t = 2_000; factors.length < 5 && s.factor < 1; t += 1_000) {
      for (let i = 0; i < 3; i++) s = onSuccess(s, t, policy);
      factors.push(s.factor);
    }
    assert.deepEqual(factors, [0.375, 0.5625, 0.84375, 1]);
    assert.equal(mode(s), 'normal');
  });
  test('successes before the hold time has passed do not recover', () => {
    let s = onThrottle(normal, 0, policy);
    for (let i = 0; i < 10; i++) s = onSuccess(s, 500, policy);
    assert.equal(s.factor, 0.5);
  });
  test('a throttle during recovery resets the success run', () => {
    let s = onThrottle(normal, 0, policy);
    s = onSuccess(onSuccess(s, 2_000, policy), 2_000, policy);
    s = onThrottle(s, 2_100, policy);
    assert.equal(s.successes, 0);
  });
  test('successes in normal mode change nothing', () => assert.equal(onSuccess(normal, 0, policy), normal));
});
