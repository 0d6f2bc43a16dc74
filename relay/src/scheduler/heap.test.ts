import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MinHeap } from './heap.ts';

test('pops keys in ascending order', () => {
  fc.assert(
    fc.property(fc.array(fc.integer()), (keys) => {
      const heap = new MinHeap<number>();
      for (const k of keys) heap.push(k, k);
      const out: number[] = [];
      for (let e = heap.pop(); e; e = heap.pop()) out.push(e[0]);
      assert.deepEqual(
        out,
        [...keys].sort((a, b) => a - b),
      );
    }),
  );
});
