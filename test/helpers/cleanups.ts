// What a test file starts and must stop whatever its tests did: each cleanup runs once, in the
// file's `after` hook, last registered first, a failing one not stopping the others.
import { after } from 'node:test';

/** Registers the calling file's `after` hook; push a cleanup for each process, server or directory. */
export function cleanupsAfterFile(): (() => Promise<void>)[] {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });
  return cleanups;
}
