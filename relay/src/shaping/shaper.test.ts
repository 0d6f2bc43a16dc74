import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateConfig } from '../config/validate.ts';
import { Shaper } from './shaper.ts';

function shaper(): Shaper {
  const result = validateConfig({
    rateLimits: [
      { name: 'per-domain', match: { recipientDomains: ['*.test'] }, rate: { messages: 1, per: 'second' } },
    ],
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return new Shaper(result.config.rateLimits, result.config.adaptiveBackoff);
}

const traits = (recipientDomain: string) => ({
  sender: 'a@example.com',
  senderDomain: 'example.com',
  recipientDomain,
  mxHosts: [],
});

describe('Shaper state stays bounded', () => {
  test('destinations whose buckets have refilled are dropped; those in debt are kept', () => {
    const s = shaper();
    for (let i = 0; i < 1000; i++) {
      const cls = s.classify(traits(`d${i}.test`));
      assert.equal(s.admit(cls, 0).admitted, true);
    }
    const busy = s.classify(traits('busy.test'));
    assert.equal(s.admit(busy, 500).admitted, true);
    assert.equal(s.trackedDestinations, 1001);
    s.prune(1_200); // the 1000 took their credit at t=0 and refilled by t=1000; busy owes until 1500
    assert.equal(s.trackedDestinations, 1);
    assert.equal(s.admit(busy, 1_200).admitted, false, 'the kept bucket still holds its debt');
  });
  test('admit prunes by itself once a minute', () => {
    const s = shaper();
    for (let i = 0; i < 100; i++) s.admit(s.classify(traits(`d${i}.test`)), 0);
    assert.equal(s.trackedDestinations, 100);
    s.admit(s.classify(traits('later.test')), 61_000);
    assert.equal(s.trackedDestinations, 1);
  });
});
