import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mayAcquire, observe } from './lease.ts';
import type { Lease } from './lease.ts';

const lease = (holder: string | null, renewTime: string, resourceVersion = '1'): Lease => ({
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { name: 'mailfleet-operator', namespace: 'ns', resourceVersion },
  spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime },
});

test('an observation keeps its time while the lease is unchanged and moves when it changes', () => {
  const first = observe(undefined, lease('a', 'T1'), 1_000);
  assert.equal(first.at, 1_000);
  assert.equal(observe(first, lease('a', 'T1'), 9_000).at, 1_000, 'same record: still first seen at 1 s');
  assert.equal(observe(first, lease('a', 'T2', '2'), 9_000).at, 9_000, 'renewed: seen changing at 9 s');
  assert.equal(observe(first, lease('b', 'T1', '3'), 9_000).at, 9_000, 'new holder: seen changing at 9 s');
});

test('who may take the lease: judged by our own observation time, never by the holder renewTime', () => {
  const cases: [string, Lease, number, number, boolean][] = [
    ['nobody holds it', lease(null, '1970-01-01T00:00:00.000000Z'), 0, 0, true],
    ['we hold it', lease('me', '2026-12-05T00:00:00.000000Z'), 0, 0, true],
    ['held, seen just now', lease('other', '2026-12-05T00:00:00.000000Z'), 0, 1_000, false],
    ['held, unchanged for 14 s of our clock', lease('other', 'T'), 0, 14_000, false],
    ['held, unchanged for a whole duration', lease('other', 'T'), 0, 15_000, true],
    // Our clock is a day ahead of the holder's: its renewTime looks a day old, yet it renews.
    [
      'a renewTime a day old by a skewed clock, seen changing now',
      lease('other', '2026-12-04T00:00:00.000000Z'),
      86_400_000,
      86_400_500,
      false,
    ],
    // Our clock is behind: the renewTime is in our future, yet the holder stopped renewing.
    [
      'a renewTime in our future, unchanged for a whole duration',
      lease('other', '2099-01-01T00:00:00.000000Z'),
      0,
      16_000,
      true,
    ],
  ];
  for (const [name, l, seenAt, now, expected] of cases) {
    const seen = observe(undefined, l, seenAt);
    assert.equal(mayAcquire(l, seen, 'me', now), expected, name);
  }
});
