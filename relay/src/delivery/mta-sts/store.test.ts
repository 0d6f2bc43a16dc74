import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCachedPolicy, encodeCachedPolicy, StsPolicyFile } from './store.ts';
import type { CachedPolicy } from './policy.ts';

const cached = (over: Partial<CachedPolicy> = {}): CachedPolicy => ({
  id: 'one',
  policy: { mode: 'enforce', mx: ['mx.a.test', '*.b.test'], maxAge: 86400 },
  expiresAt: 1000,
  ...over,
});

test('a cached policy survives encode and decode', () => {
  assert.deepEqual(decodeCachedPolicy(encodeCachedPolicy(cached())), cached());
});

const BAD: { name: string; value: unknown }[] = [
  { name: 'not JSON', value: '{' },
  { name: 'no id', value: JSON.stringify({ ...cached(), id: undefined }) },
  {
    name: 'an unknown mode',
    value: JSON.stringify({ ...cached(), policy: { ...cached().policy, mode: 'x' } }),
  },
  {
    name: 'mx not a list of names',
    value: JSON.stringify({ ...cached(), policy: { ...cached().policy, mx: [1] } }),
  },
  { name: 'no expiry', value: JSON.stringify({ ...cached(), expiresAt: 'soon' }) },
];
for (const c of BAD)
  test(`decodeCachedPolicy refuses ${c.name}`, () => {
    assert.equal(decodeCachedPolicy(c.value), undefined);
  });

test('the policy file keeps unexpired policies across a restart, and drops expired ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mta-sts-file-'));
  const path = join(dir, 'mta-sts.json');
  try {
    let now = 0;
    const first = new StsPolicyFile(path, () => now);
    await first.load();
    assert.equal(await first.get('a.test'), undefined);
    await first.put('a.test', cached({ expiresAt: 1000 }));
    await first.put('b.test', cached({ id: 'b', expiresAt: 5000 }));
    const restarted = new StsPolicyFile(path, () => now);
    await restarted.load();
    assert.deepEqual(await restarted.get('a.test'), cached({ expiresAt: 1000 }));
    now = 2000;
    const later = new StsPolicyFile(path, () => now);
    await later.load();
    assert.equal(await later.get('a.test'), undefined);
    assert.equal((await later.get('b.test'))?.id, 'b');
    await writeFile(path, '{"c.test": {"id": 3}}');
    const bad = new StsPolicyFile(path, () => now);
    await bad.load();
    assert.equal(await bad.get('c.test'), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
