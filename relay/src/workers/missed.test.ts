import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SuppressionChange } from '../suppression/entry.ts';
import { remember, type MissedChanges } from './missed.ts';

const add = (address: string, scope = '*'): SuppressionChange => ({
  op: 'add',
  entry: { address, scope, reason: 'manual', source: 'api', messageId: '', addedAt: 1, expiresAt: 0 },
});
const remove = (address: string, scope = '*'): SuppressionChange => ({ op: 'remove', scope, address, at: 2 });

describe('remember', () => {
  const cases: { name: string; batches: SuppressionChange[][]; kept: SuppressionChange[] }[] = [
    {
      name: 'changes to different addresses are all kept, in order',
      batches: [[add('a@x'), add('b@x')]],
      kept: [add('a@x'), add('b@x')],
    },
    {
      name: 'a removal after an add keeps only the removal',
      batches: [[add('a@x')], [remove('a@x')]],
      kept: [remove('a@x')],
    },
    {
      name: 'an add after a removal keeps the add, after the changes in between',
      batches: [[remove('a@x'), add('b@x')], [add('a@x')]],
      kept: [add('b@x'), add('a@x')],
    },
    {
      name: 'addresses compare without case',
      batches: [[add('A@X')], [remove('a@x')]],
      kept: [remove('a@x')],
    },
    {
      name: 'the same address in two scopes is two entries',
      batches: [[add('a@x', 'example.com'), add('a@x')]],
      kept: [add('a@x', 'example.com'), add('a@x')],
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const missed: MissedChanges = new Map();
      for (const b of c.batches) remember(missed, b);
      assert.deepEqual([...missed.values()], c.kept);
    });
});
