import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatusMemo } from './status-memo.ts';

test('a status write is the baseline until the cache moves past the version it was decided on', () => {
  const memo = new StatusMemo();
  const stale = { resourceVersion: '10', status: { phase: 'old' } };
  assert.deepEqual(memo.baseline('k', stale), { phase: 'old' }, 'nothing written: the cache');
  memo.remember('k', '10', { phase: 'new' });
  assert.deepEqual(memo.baseline('k', stale), { phase: 'new' }, 'cache not caught up: what we wrote');
  const echoed = { resourceVersion: '11', status: { phase: 'new' } };
  assert.deepEqual(memo.baseline('k', echoed), { phase: 'new' }, 'the echo: the cache');
  assert.equal(memo.size, 0, 'forgotten once the cache caught up');
});

test('someone else changing the object makes the cached status the baseline again', () => {
  const memo = new StatusMemo();
  memo.remember('k', '10', { phase: 'ours' });
  const edited = { resourceVersion: '12', status: { phase: 'edited' } };
  assert.deepEqual(memo.baseline('k', edited), { phase: 'edited' });
});

test('an object without a resourceVersion (never stored) is not remembered', () => {
  const memo = new StatusMemo();
  memo.remember('k', undefined, { phase: 'x' });
  assert.equal(memo.size, 0);
  assert.deepEqual(memo.baseline('k', { status: { phase: 'cached' } }), { phase: 'cached' });
});
