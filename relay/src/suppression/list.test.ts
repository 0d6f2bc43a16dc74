// The list against the real filesystem: what is added survives a new process (a new list on the
// same file), a torn last line is skipped, expired entries and dead lines are compacted away.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SuppressionList } from './list.ts';
import type { SuppressionChange, SuppressionEntry } from './entry.ts';

const NOW = 1_800_000_000_000;

function entry(address: string, over: Partial<SuppressionEntry> = {}): SuppressionEntry {
  return {
    address,
    scope: '*',
    reason: 'hard-bounce',
    source: 'smtp',
    messageId: '',
    addedAt: NOW,
    expiresAt: 0,
    ...over,
  };
}

describe('suppression list on disk', () => {
  let dir: string;
  let clock = NOW;
  const open = async (file: string, changed?: (c: readonly SuppressionChange[]) => void) => {
    const list = new SuppressionList({ file, now: () => clock, ...(changed ? { changed } : {}) });
    return { list, loaded: await list.open() };
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'suppression-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('adds and removals survive a reopen', async () => {
    const file = join(dir, 'a', 'suppression.jsonl');
    const { list } = await open(file);
    await list.add([
      entry('a@example.org'),
      entry('b@example.org', { scope: 'news.example.com', reason: 'complaint' }),
    ]);
    assert.equal(await list.remove('*', 'A@example.org'), true);
    assert.equal(await list.remove('*', 'nobody@example.org'), false);
    await list.close();
    const again = await open(file);
    assert.equal(again.loaded.entries, 1);
    assert.equal(again.list.check('x@news.example.com', 'B@Example.org'), 'complaint');
    assert.equal(again.list.check('x@other.example.com', 'b@example.org'), undefined);
    assert.equal(again.list.check('x@news.example.com', 'a@example.org'), undefined);
    await again.list.close();
  });

  test('a torn last line is skipped and the file is rewritten clean', async () => {
    const file = join(dir, 'torn.jsonl');
    const { list } = await open(file);
    await list.add([entry('a@example.org')]);
    await list.close();
    await appendFile(file, '{"o":"a","s":"*","a":"half');
    const again = await open(file);
    assert.equal(again.loaded.damaged, 1);
    assert.equal(again.loaded.compacted, true);
    assert.equal(again.list.size, 1);
    await again.list.add([entry('c@example.org')]);
    await again.list.close();
    const third = await open(file);
    assert.equal(third.loaded.damaged, 0);
    assert.deepEqual(
      [...third.list.entries()].map((e) => e.address),
      ['a@example.org', 'c@example.org'],
    );
    await third.list.close();
  });

  test('expired entries are dropped at open and the journal compacted', async () => {
    const file = join(dir, 'expiry.jsonl');
    const { list } = await open(file);
    await list.add([entry('soon@example.org', { expiresAt: NOW + 1000 }), entry('kept@example.org')]);
    await list.close();
    clock = NOW + 2000;
    const again = await open(file);
    assert.equal(again.loaded.compacted, true);
    assert.deepEqual(
      [...again.list.entries()].map((e) => e.address),
      ['kept@example.org'],
    );
    await again.list.close();
    assert.equal((await readFile(file, 'utf8')).trim().split('\n').length, 1);
    clock = NOW;
  });

  test('a journal of mostly removals is compacted on demand', async () => {
    const file = join(dir, 'churn.jsonl');
    const { list } = await open(file);
    for (let round = 0; round < 3; round++) {
      await list.import(Array.from({ length: 1000 }, (_, i) => entry(`u${i}@example.org`)));
      for (let i = 0; i < 1000; i++) await list.remove('*', `u${i}@example.org`);
    }
    await list.add([entry('last@example.org')]);
    assert.equal(await list.compactIfWorthIt(), true);
    await list.close();
    assert.equal((await readFile(file, 'utf8')).trim().split('\n').length, 1);
  });

  test('local changes are published, shared ones are applied and journalled but not published', async () => {
    const file = join(dir, 'shared.jsonl');
    const published: SuppressionChange[] = [];
    const { list } = await open(file, (c) => published.push(...c));
    await list.add([entry('local@example.org')]);
    await list.applyShared([{ op: 'add', entry: entry('peer@example.org', { source: 'peer' }) }]);
    assert.deepEqual(
      published.map((c) => (c.op === 'add' ? c.entry.address : '')),
      ['local@example.org'],
    );
    await list.close();
    const again = await open(file);
    assert.equal(again.list.check('', 'peer@example.org'), 'hard-bounce');
    await again.list.close();
  });
});
