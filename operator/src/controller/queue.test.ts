import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from './queue.ts';
import { requeueDelay } from './policy.ts';

test('keys are deduplicated while waiting and re-run when added during processing', async () => {
  const runs: string[] = [];
  let release: () => void = () => {};
  const q = new WorkQueue({
    workers: 1,
    process: async (key) => {
      runs.push(key);
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
    },
    onError: () => 0,
  });
  q.add('a');
  q.add('b');
  q.add('b');
  q.add('a'); // a is active: marked dirty
  release();
  await q.idle();
  assert.deepEqual(runs, ['a', 'b', 'a']);
});

test('a failing key is retried with the delay the policy gives', async () => {
  const attempts: number[] = [];
  let calls = 0;
  const q = new WorkQueue({
    workers: 2,
    process: async () => {
      calls++;
      if (calls < 3) throw new Error('boom');
    },
    onError: (_key, _error, attempt) => {
      attempts.push(attempt);
      return 1;
    },
  });
  q.add('a');
  while (calls < 3) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(attempts, [1, 2]);
  q.stop();
});

test('a batch window turns a burst of adds into one run, and adds during a run into one more', async () => {
  const runs: string[] = [];
  let release: () => void = () => {};
  const q = new WorkQueue({
    workers: 1,
    batchMs: 20,
    process: async (key) => {
      runs.push(key);
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
    },
    onError: () => 0,
  });
  for (let i = 0; i < 5; i++) q.add('a');
  assert.equal(q.depth, 1, 'waiting in its window');
  assert.deepEqual(runs, [], 'nothing runs before the window ends');
  while (runs.length === 0) await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < 3; i++) q.add('a'); // active: one more run, after its own window
  release();
  await q.idle();
  assert.deepEqual(runs, ['a', 'a']);
});

test('requeue delays back off per code and are capped', () => {
  assert.equal(requeueDelay('API_CONFLICT', 1), 100);
  assert.equal(requeueDelay('API_UNAVAILABLE', 3), 4000);
  assert.equal(requeueDelay('INTERNAL', 30), 300_000);
});

test('a held queue starts nothing until every hold is released, then runs what collected', async () => {
  const runs: string[] = [];
  const q = new WorkQueue({ workers: 2, process: async (key) => void runs.push(key), onError: () => 0 });
  const releaseLists = q.hold();
  const releaseLater = q.hold();
  q.add('a');
  q.add('b');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(runs, [], 'nothing ran while held');
  releaseLists();
  releaseLists(); // a second call of the same release does not release another hold
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(runs, [], 'one hold is still in force');
  releaseLater();
  await q.idle();
  assert.deepEqual(runs, ['a', 'b']);
});
