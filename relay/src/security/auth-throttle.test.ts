import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthThrottle } from './auth-throttle.ts';

const policy = { maxFailures: 3, windowMs: 60_000, lockoutMs: 300_000, baseDelayMs: 100, maxDelayMs: 400 };

describe('AuthThrottle', () => {
  test('failures from one address delay the next attempt and then lock it out', () => {
    let now = 0;
    const t = new AuthThrottle(policy, () => now);
    assert.deepEqual(t.check('192.0.2.1', 'alice'), { locked: false, delayMs: 0 });
    assert.equal(t.fail('192.0.2.1', 'alice'), 0);
    assert.deepEqual(t.check('192.0.2.1', 'bob'), { locked: false, delayMs: 100 });
    assert.equal(t.fail('192.0.2.1', 'bob'), 0);
    assert.equal(t.fail('192.0.2.1', 'carol'), 1, 'the third failure locks the address');
    assert.equal(t.check('192.0.2.1', 'dave').locked, true);
    assert.equal(t.check('192.0.2.2', 'dave').locked, false, 'another address is not locked');
    now = 300_001;
    assert.equal(t.check('192.0.2.1', 'dave').locked, false, 'the lockout ends');
  });
  test('failures for one username from many addresses lock the username', () => {
    const t = new AuthThrottle(policy, () => 0);
    t.fail('192.0.2.1', 'Alice');
    t.fail('192.0.2.2', 'alice');
    assert.equal(t.fail('192.0.2.3', 'ALICE'), 1);
    assert.equal(t.check('192.0.2.4', 'alice').locked, true);
  });
});
