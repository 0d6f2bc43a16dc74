import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextStep, retryDelay } from './retry.ts';

const policy = { firstRetryMs: 300_000, maxBackoffMs: 3_600_000, maxQueueLifetimeMs: 5 * 86_400_000 };
const middle = () => 0.5;

test('the first retry comes after firstRetry', () => {
  assert.equal(retryDelay(1, policy, middle), 300_000);
});

test('each retry doubles the delay', () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => retryDelay(n, policy, middle)),
    [300_000, 600_000, 1_200_000, 2_400_000],
  );
});

test('the delay stops growing at maxBackoff', () => {
  assert.equal(retryDelay(10, policy, middle), 3_600_000);
  assert.equal(retryDelay(1000, policy, middle), 3_600_000);
});

test('jitter stays within 25% either side', () => {
  assert.equal(
    retryDelay(1, policy, () => 0),
    225_000,
  );
  assert.equal(
    retryDelay(1, policy, () => 0.999999),
    375_000,
  );
});

test('a message past its lifetime expires', () => {
  assert.deepEqual(nextStep({ attempts: 3, receivedAt: 0, now: policy.maxQueueLifetimeMs }, policy, middle), {
    kind: 'expire',
  });
});

test('the last retry is placed at the expiry instant', () => {
  const now = policy.maxQueueLifetimeMs - 1000;
  assert.deepEqual(nextStep({ attempts: 20, receivedAt: 0, now }, policy, middle), {
    kind: 'retry',
    at: policy.maxQueueLifetimeMs,
  });
});
