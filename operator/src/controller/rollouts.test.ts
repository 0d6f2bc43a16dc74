import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RolloutSlots } from './rollouts.ts';

test('one slot: the first pool rolls, the second waits until the first gives its slot back', () => {
  const slots = new RolloutSlots(1);
  assert.equal(slots.reserve('mail/a', 0), true);
  assert.equal(slots.reserve('mail/b', 1), false);
  assert.equal(slots.reserve('mail/a', 2), true, 'a pool keeps its slot across passes');
  slots.release('mail/a');
  assert.equal(slots.reserve('mail/b', 3), true);
  assert.deepEqual(slots.holders, ['mail/b']);
});

test('two slots: a third pool waits', () => {
  const slots = new RolloutSlots(2);
  assert.deepEqual(
    ['x/a', 'x/b', 'x/c'].map((k) => slots.reserve(k, 0)),
    [true, true, false],
  );
});

test('a slot held past holdMs is taken back: a rollout that never finishes does not block the others', () => {
  const slots = new RolloutSlots(1, 1000);
  assert.equal(slots.reserve('mail/stuck', 0), true);
  assert.equal(slots.reserve('mail/next', 999), false);
  assert.equal(slots.reserve('mail/next', 1000), true);
  assert.deepEqual(slots.holders, ['mail/next']);
});

test('no limit (0): every pool rolls at once', () => {
  const slots = new RolloutSlots(0);
  for (const k of ['a', 'b', 'c', 'd']) assert.equal(slots.reserve(k, 0), true);
});

test('releasing a pool that holds no slot changes nothing', () => {
  const slots = new RolloutSlots(1);
  slots.reserve('mail/a', 0);
  slots.release('mail/other');
  assert.deepEqual(slots.holders, ['mail/a']);
});
