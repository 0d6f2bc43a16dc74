import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conditionTransitions, mergeConditions } from './conditions.ts';
import type { Condition } from './types.ts';

const old: Condition[] = [
  {
    type: 'Ready',
    status: 'False',
    reason: 'RelaysNotReady',
    message: '0/2',
    lastTransitionTime: 'T0',
    observedGeneration: 1,
  },
  { type: 'Custom', status: 'True', reason: 'Kept', message: 'kept', lastTransitionTime: 'T0' },
];

test('an unchanged status keeps its transition time; a changed one gets now', () => {
  const same = mergeConditions(
    old,
    [{ type: 'Ready', status: 'False', reason: 'RelaysNotReady', message: '1/2' }],
    2,
    'T1',
  );
  assert.equal(same[0]?.lastTransitionTime, 'T0');
  assert.equal(same[0]?.message, '1/2');
  assert.equal(same[0]?.observedGeneration, 2);
  const changed = mergeConditions(
    old,
    [{ type: 'Ready', status: 'True', reason: 'RelaysReady', message: '2/2' }],
    2,
    'T1',
  );
  assert.equal(changed[0]?.lastTransitionTime, 'T1');
});

test('conditions no longer decided are dropped; new ones get now', () => {
  const merged = mergeConditions(
    old,
    [{ type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' }],
    1,
    'T1',
  );
  assert.deepEqual(
    merged.map((c) => [c.type, c.lastTransitionTime]),
    [['Degraded', 'T1']],
  );
});

test('transitions are status or reason changes, not message changes', () => {
  const next = mergeConditions(
    old,
    [{ type: 'Ready', status: 'False', reason: 'RelaysNotReady', message: 'other' }],
    1,
    'T1',
  );
  assert.equal(conditionTransitions(old, next).length, 0);
  const flipped = mergeConditions(
    old,
    [{ type: 'Ready', status: 'True', reason: 'RelaysReady', message: '' }],
    1,
    'T1',
  );
  assert.deepEqual(
    conditionTransitions(old, flipped).map((t) => [t.condition.type, t.from, t.condition.status]),
    [['Ready', 'False', 'True']],
  );
});
