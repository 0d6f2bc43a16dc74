import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSpoolFs, unwritten } from './fs-ops.ts';

const dir = mkdtempSync(join(tmpdir(), 'fs-ops-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const b = (s: string) => Buffer.from(s);

describe('unwritten (what a short vectored write left)', () => {
  const cases: { name: string; parts: string[]; written: number; rest: string[] }[] = [
    { name: 'nothing written: every part', parts: ['ab', 'cd'], written: 0, rest: ['ab', 'cd'] },
    { name: 'a whole part written', parts: ['ab', 'cd'], written: 2, rest: ['cd'] },
    { name: 'into the middle of a part', parts: ['ab', 'cde', 'f'], written: 3, rest: ['de', 'f'] },
    { name: 'everything written', parts: ['ab', 'cd'], written: 4, rest: [] },
    { name: 'empty parts are dropped', parts: ['', 'ab', ''], written: 1, rest: ['b'] },
  ];
  for (const c of cases)
    test(c.name, () => {
      assert.deepEqual(
        unwritten(c.parts.map(b), c.written).map((p) => p.toString()),
        c.rest,
      );
    });
});

describe('createFile', () => {
  const cases = [
    { name: 'a small batch (written on the event loop)', sizes: [100, 2000, 7] },
    { name: 'a batch of megabytes (written on the thread pool)', sizes: [1 << 20, 300_000, 1, 1 << 20] },
  ];
  for (const [i, c] of cases.entries())
    test(`${c.name} is written whole, its parts in order`, async () => {
      const parts = c.sizes.map((n, j) => Buffer.alloc(n, 97 + j));
      const size = c.sizes.reduce((a, n) => a + n, 0);
      const path = join(dir, `f${i}`);
      const fd = await nodeSpoolFs.createFile(path, parts, size);
      nodeSpoolFs.closeFile(fd);
      assert.deepEqual(readFileSync(path), Buffer.concat(parts));
    });

  test('an existing file is never overwritten', async () => {
    const path = join(dir, 'exists');
    nodeSpoolFs.closeFile(await nodeSpoolFs.createFile(path, [b('first')], 5));
    await assert.rejects(nodeSpoolFs.createFile(path, [b('second')], 6), { code: 'EEXIST' });
    assert.equal(readFileSync(path, 'utf8'), 'first');
  });
});
