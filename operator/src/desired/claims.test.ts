import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retainedClaims } from './claims.ts';

const claim = (name: string) => ({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name } });

test('the spool claims at or past the replica count are retained, in ordinal order', () => {
  const cases: [string, number, string[], string[]][] = [
    ['scaled 3 -> 1', 1, ['spool-out-0', 'spool-out-1', 'spool-out-2'], ['spool-out-1', 'spool-out-2']],
    ['every claim in use', 3, ['spool-out-0', 'spool-out-1', 'spool-out-2'], []],
    [
      'ordinals compared as numbers',
      2,
      ['spool-out-10', 'spool-out-2', 'spool-out-9'],
      ['spool-out-2', 'spool-out-9', 'spool-out-10'],
    ],
    ['scaled to 0', 0, ['spool-out-0'], ['spool-out-0']],
    ['another pool whose name extends this one', 0, ['spool-out-b-0', 'spool-outer-1'], []],
    ['not a spool claim, or no ordinal', 0, ['data-out-0', 'spool-out-x', 'spool-out-'], []],
  ];
  for (const [name, replicas, claims, want] of cases)
    assert.deepEqual(retainedClaims('out', replicas, claims.map(claim)), want, name);
});
