import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSubset, mergePatch, needsApply, withAppliedHash, quantity } from './diff.ts';

test('subset comparison', async (t) => {
  const cases = [
    {
      name: 'server defaults are ignored',
      d: { spec: { replicas: 2 } },
      o: { spec: { replicas: 2, revisionHistoryLimit: 10 } },
      subset: true,
    },
    {
      name: 'a changed field is drift',
      d: { spec: { replicas: 2 } },
      o: { spec: { replicas: 3 } },
      subset: false,
    },
    { name: 'a deleted field is drift', d: { data: { a: '1' } }, o: { data: {} }, subset: false },
    {
      name: 'list lengths must match',
      d: { ports: [{ port: 25 }] },
      o: { ports: [{ port: 25 }, { port: 587 }] },
      subset: false,
    },
    { name: 'empty desired matches absent', d: { annotations: {} }, o: {}, subset: true },
    {
      name: 'numbers and strings compare as text (int-or-string)',
      d: { port: 8080 },
      o: { port: '8080' },
      subset: true,
    },
  ];
  for (const c of cases) await t.test(c.name, () => assert.equal(isSubset(c.d, c.o), c.subset));
});

type Obj = { metadata: { name: string; annotations?: Record<string, string> }; data: Record<string, string> };

test('apply is needed for drift and for removed fields, not otherwise', () => {
  const before = withAppliedHash<Obj>({ metadata: { name: 'x' }, data: { a: '1', b: '2' } });
  assert.equal(needsApply(before, undefined), true);
  assert.equal(needsApply(before, structuredClone(before)), false);
  const drifted = structuredClone(before);
  drifted.data.a = 'edited';
  assert.equal(needsApply(before, drifted), true);
  const fewer = withAppliedHash<Obj>({ metadata: { name: 'x' }, data: { a: '1' } });
  assert.equal(needsApply(fewer, structuredClone(before)), true, 'b must be removed by a new apply');
});

test('status merge patch removes stale fields', async (t) => {
  const cases: { name: string; before: unknown; after: Record<string, unknown>; patch: unknown }[] = [
    { name: 'nothing before: the status as is', before: undefined, after: { a: 1 }, patch: { a: 1 } },
    {
      name: 'a field dropped becomes null',
      before: { bounceRate: '0.1', replicas: 2 },
      after: { replicas: 2 },
      patch: { bounceRate: null, replicas: 2 },
    },
    {
      name: 'nested objects are patched field by field',
      before: { dkim: { selector: 's', dnsRecord: { name: 'n' } } },
      after: { dkim: { selector: 't' } },
      patch: { dkim: { selector: 't', dnsRecord: null } },
    },
    {
      name: 'lists are replaced whole',
      before: { conditions: [{ type: 'A' }, { type: 'B' }] },
      after: { conditions: [{ type: 'A' }] },
      patch: { conditions: [{ type: 'A' }] },
    },
    { name: 'undefined counts as absent', before: { x: 1 }, after: { x: undefined }, patch: { x: null } },
  ];
  for (const c of cases) await t.test(c.name, () => assert.deepEqual(mergePatch(c.before, c.after), c.patch));
});

test('quantities the API server normalizes are the same value, not drift', () => {
  const cases: [string, unknown, unknown, boolean][] = [
    ['half a CPU as the server writes it', { cpu: '0.5' }, { cpu: '500m' }, true],
    ['whole CPUs', { cpu: '2' }, { cpu: '2000m' }, true],
    ['binary memory', { memory: '1024Mi' }, { memory: '1Gi' }, true],
    ['a real change', { cpu: '500m' }, { cpu: '250m' }, false],
    ['binary and decimal are not the same', { memory: '1G' }, { memory: '1Gi' }, false],
    ['text is still compared as text', { name: 'relay' }, { name: 'relay2' }, false],
  ];
  for (const [name, desired, observed, expected] of cases)
    assert.equal(isSubset(desired, observed), expected, name);
  assert.equal(quantity('25Mi'), 25 * 2 ** 20);
  assert.equal(quantity('mailfleet'), undefined);
});
