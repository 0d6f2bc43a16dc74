import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit } from './group-commit.ts';

/** A group commit whose commits are only recorded. */
function recording(options: { maxItems: number; gatherMs: number }) {
  const commits: number[][] = [];
  const group = new GroupCommit<number>(async (items) => {
    commits.push(items);
  }, options);
  return { commits, group };
}

test('writers that arrive together share one commit; later ones share the next', async () => {
  const commits: number[][] = [];
  const group = new GroupCommit<number>(
    async (items) => {
      commits.push(items);
      await new Promise((r) => setTimeout(r, 5));
    },
    { maxItems: 100 },
  );
  const first = Array.from({ length: 20 }, (_, i) => group.add(i));
  await new Promise((r) => setImmediate(r));
  // The first commit is running now: these wait for it and then go together.
  const second = Array.from({ length: 30 }, (_, i) => group.add(100 + i));
  await Promise.all([...first, ...second]);
  assert.equal(commits.length, 2);
  assert.deepEqual(
    commits[0],
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.equal(commits[1]?.length, 30);
});

test('a batch is never larger than maxItems', async () => {
  const sizes: number[] = [];
  const group = new GroupCommit<number>(
    async (items) => {
      sizes.push(items.length);
    },
    { maxItems: 8 },
  );
  await Promise.all(Array.from({ length: 20 }, (_, i) => group.add(i)));
  assert.deepEqual(sizes, [8, 8, 4]);
});

test('a failed commit rejects every writer in it, and the next batch is committed', async () => {
  let fail = true;
  const group = new GroupCommit<string>(
    async () => {
      if (fail) throw new Error('EIO');
    },
    { maxItems: 100 },
  );
  const failed = await Promise.allSettled([group.add('a'), group.add('b')]);
  assert.deepEqual(
    failed.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  fail = false;
  await group.add('c');
});

test('a lone writer, or writers one after another, never wait for the gather window', async () => {
  const { commits, group } = recording({ maxItems: 100, gatherMs: 60_000 });
  const started = Date.now();
  for (let i = 0; i < 5; i++) await group.add(i);
  assert.ok(Date.now() - started < 1000, 'no 60 s wait');
  assert.deepEqual(commits, [[0], [1], [2], [3], [4]]);
});

test('after a commit of concurrent writers, the next commit gathers the writers of its window', async () => {
  const { commits, group } = recording({ maxItems: 100, gatherMs: 50 });
  await Promise.all([group.add(0), group.add(1)]);
  // Concurrent writers were seen: these three, arriving 10 ms apart, share the next commit.
  const later: Promise<void>[] = [];
  for (let i = 2; i < 5; i++) {
    later.push(group.add(i));
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(later);
  assert.deepEqual(commits, [
    [0, 1],
    [2, 3, 4],
  ]);
});

test('a full batch does not wait out the gather window', async () => {
  const { commits, group } = recording({ maxItems: 4, gatherMs: 60_000 });
  await Promise.all([group.add(0), group.add(1)]);
  const started = Date.now();
  await Promise.all([2, 3, 4, 5].map((i) => group.add(i)));
  assert.ok(Date.now() - started < 1000, 'committed when maxItems writers were waiting');
  assert.deepEqual(commits, [
    [0, 1],
    [2, 3, 4, 5],
  ]);
});

/** A group commit whose commits wait until released, so what runs at once can be seen. */
function gated(options: { maxItems: number; maxBytes: number; maxConcurrent: number }) {
  const started: number[][] = [];
  const gates: (() => void)[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const group = new GroupCommit<number>(
    async (items) => {
      started.push(items);
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      await new Promise<void>((r) => gates.push(r));
      running--;
    },
    { ...options, sizeOf: (n) => n },
  );
  const tick = () => new Promise((r) => setImmediate(r));
  return { started, gates, group, tick, mostAtOnce: () => mostAtOnce };
}

test('full batches (maxBytes) commit beside the running commit, up to maxConcurrent', async () => {
  const { started, gates, group, tick, mostAtOnce } = gated({
    maxItems: 100,
    maxBytes: 1000,
    maxConcurrent: 2,
  });
  const writes = [1000, 1000, 1000].map((n) => group.add(n));
  await tick();
  await tick();
  assert.deepEqual(started, [[1000], [1000]], 'two big writers commit at once, each alone');
  gates.shift()!();
  await tick();
  await tick();
  assert.deepEqual(started, [[1000], [1000], [1000]], 'the third starts when one ends');
  while (gates.length > 0) gates.shift()!();
  await Promise.all(writes);
  assert.equal(mostAtOnce(), 2);
});

test('small writers never commit beside a running commit', async () => {
  const { started, gates, group, tick, mostAtOnce } = gated({
    maxItems: 100,
    maxBytes: 1000,
    maxConcurrent: 4,
  });
  const first = group.add(10);
  await tick();
  const later = [20, 30, 40].map((n) => group.add(n));
  await tick();
  await tick();
  assert.deepEqual(started, [[10]], 'the others wait for the running commit');
  gates.shift()!();
  await first;
  await tick();
  await tick();
  assert.deepEqual(started, [[10], [20, 30, 40]]);
  gates.shift()!();
  await Promise.all(later);
  assert.equal(mostAtOnce(), 1);
});

test('a batch ends with the writer that takes it to maxBytes', async () => {
  const sizes: number[][] = [];
  const group = new GroupCommit<number>(
    async (items) => {
      sizes.push(items);
    },
    { maxItems: 100, maxBytes: 100, sizeOf: (n) => n },
  );
  await Promise.all([40, 40, 40, 40, 10].map((n) => group.add(n)));
  assert.deepEqual(sizes, [
    [40, 40, 40],
    [40, 10],
  ]);
});

test('a commit that throws at once fails its writers, and the next batch is committed', async () => {
  let fail = true;
  const group = new GroupCommit<string>(
    (() => {
      if (fail) throw new Error('EBADF');
      return Promise.resolve();
    }) as (items: string[]) => Promise<void>,
    { maxItems: 100 },
  );
  await assert.rejects(group.add('a'), /EBADF/);
  fail = false;
  await group.add('b');
});
