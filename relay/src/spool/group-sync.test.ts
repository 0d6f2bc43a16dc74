import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupSync } from './group-sync.ts';

test('concurrent requests share fsyncs and each waits for one that started after it', async () => {
  let syncs = 0;
  let started = 0;
  const startedAt: number[] = [];
  const group = new GroupSync(async () => {
    startedAt.push(++started);
    await new Promise((r) => setTimeout(r, 5));
    syncs++;
  });
  const first = group.request();
  const rest = Array.from({ length: 50 }, () => group.request());
  await Promise.all([first, ...rest]);
  assert.equal(syncs, 2);
});

test('a failed fsync rejects its waiters and the next request retries', async () => {
  let fail = true;
  const group = new GroupSync(async () => {
    if (fail) throw new Error('EIO');
  });
  await assert.rejects(group.request(), /EIO/);
  fail = false;
  await group.request();
});
