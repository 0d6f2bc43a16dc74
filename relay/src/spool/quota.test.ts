import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spoolFreeBytes } from './quota.ts';

const MiB = 1024 * 1024;

const cases = [
  {
    name: 'no quota: what statfs reports, whatever the spool holds',
    space: { filesystemFree: 50_000 * MiB, spoolBytes: 900 * MiB, maxBytes: 0 },
    want: 50_000 * MiB,
  },
  {
    name: 'a quota on a roomy node disk: what is left under the quota',
    space: { filesystemFree: 50_000 * MiB, spoolBytes: 900 * MiB, maxBytes: 1024 * MiB },
    want: 124 * MiB,
  },
  {
    name: 'a quota larger than the disk has left: the disk decides',
    space: { filesystemFree: 10 * MiB, spoolBytes: 100 * MiB, maxBytes: 1024 * MiB },
    want: 10 * MiB,
  },
  {
    name: 'a spool already past its quota: nothing is free (never negative)',
    space: { filesystemFree: 50_000 * MiB, spoolBytes: 1100 * MiB, maxBytes: 1024 * MiB },
    want: 0,
  },
];

for (const c of cases) {
  test(c.name, () => {
    assert.equal(spoolFreeBytes(c.space), c.want);
  });
}
