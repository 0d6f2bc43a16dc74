import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SuppressionTable } from './table.ts';
import type { SuppressionEntry } from './entry.ts';

const NOW = 1_800_000_000_000;

function entry(over: Partial<SuppressionEntry> = {}): SuppressionEntry {
  return {
    address: 'gone@example.org',
    scope: '*',
    reason: 'hard-bounce',
    source: 'smtp',
    messageId: '',
    addedAt: NOW,
    expiresAt: 0,
    ...over,
  };
}

describe('suppression table', () => {
  const lookups: [string, SuppressionEntry[], string, string, string | undefined][] = [
    [
      'a pool-wide entry refuses every sending domain',
      [entry()],
      'gone@example.org',
      'a.example',
      'hard-bounce',
    ],
    ['a pool-wide entry refuses the null sender', [entry()], 'gone@example.org', '', 'hard-bounce'],
    [
      "a sending domain's entry refuses that domain",
      [entry({ scope: 'news.example.com', reason: 'complaint' })],
      'gone@example.org',
      'news.example.com',
      'complaint',
    ],
    [
      "a sending domain's entry leaves other domains alone",
      [entry({ scope: 'news.example.com', reason: 'complaint' })],
      'gone@example.org',
      'billing.example.com',
      undefined,
    ],
    ['another address is not refused', [entry()], 'other@example.org', 'a.example', undefined],
    [
      'an expired entry does not refuse',
      [entry({ expiresAt: NOW - 1 })],
      'gone@example.org',
      'a.example',
      undefined,
    ],
    [
      'an entry expiring later refuses',
      [entry({ expiresAt: NOW + 1 })],
      'gone@example.org',
      'a.example',
      'hard-bounce',
    ],
    [
      'the pool-wide reason wins over a domain one',
      [entry({ scope: 'a.example', reason: 'complaint' }), entry({ reason: 'manual' })],
      'gone@example.org',
      'a.example',
      'manual',
    ],
  ];
  for (const [name, entries, address, domain, reason] of lookups)
    test(name, () => {
      const t = new SuppressionTable();
      for (const e of entries) t.set(e);
      assert.equal(t.reasonFor(address, domain, NOW), reason);
    });

  test('set replaces, delete frees the slot for reuse, get returns every field', () => {
    const t = new SuppressionTable();
    t.set(entry({ messageId: 'Q1' }));
    t.set(entry({ reason: 'manual', source: 'api', messageId: 'Q2', expiresAt: NOW + 5 }));
    assert.equal(t.size, 1);
    assert.deepEqual(
      t.get('*', 'gone@example.org'),
      entry({ reason: 'manual', source: 'api', messageId: 'Q2', expiresAt: NOW + 5 }),
    );
    assert.equal(t.delete('*', 'gone@example.org'), true);
    assert.equal(t.delete('*', 'gone@example.org'), false);
    assert.equal(t.size, 0);
    assert.deepEqual(t.scopes(), []);
    t.set(entry({ address: 'new@example.org', scope: 'a.example' }));
    assert.deepEqual(t.get('a.example', 'new@example.org')?.messageId, '');
    assert.deepEqual(t.scopes(), ['a.example']);
  });

  test('grows past its initial capacity and keeps every entry', () => {
    const t = new SuppressionTable();
    for (let i = 0; i < 5000; i++) t.set(entry({ address: `u${i}@example.org`, addedAt: NOW + i }));
    assert.equal(t.size, 5000);
    assert.equal(t.get('*', 'u4999@example.org')?.addedAt, NOW + 4999);
    assert.equal(t.get('*', 'u0@example.org')?.addedAt, NOW);
    assert.equal([...t.entries()].length, 5000);
  });

  test('prune removes only expired entries', () => {
    const t = new SuppressionTable();
    t.set(entry({ address: 'a@example.org', expiresAt: NOW - 1 }));
    t.set(entry({ address: 'b@example.org', expiresAt: NOW + 1 }));
    t.set(entry({ address: 'c@example.org' }));
    assert.equal(t.prune(NOW), 1);
    assert.deepEqual(
      [...t.entries()].map((e) => e.address),
      ['b@example.org', 'c@example.org'],
    );
  });

  test('behaves as a Map under random adds, replaces and deletes (tombstones, slot reuse, arena compaction)', () => {
    const t = new SuppressionTable();
    const model = new Map<string, { addedAt: number; messageId: string }>();
    let seed = 1;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    // Long message ids, so replaced and deleted entries leave megabytes of dead arena bytes.
    const pad = 'x'.repeat(400);
    for (let i = 0; i < 60_000; i++) {
      const scope = ['*', 'a.example', 'b.example'][random(3)]!;
      const address = random(50) === 0 ? `ünï${random(100)}@例え.jp` : `u${random(3000)}@ex${random(3)}.org`;
      const key = `${scope} ${address}`;
      switch (random(3)) {
        case 0:
          t.set(entry({ address, scope, addedAt: i, messageId: `${pad}${i}` }));
          model.set(key, { addedAt: i, messageId: `${pad}${i}` });
          break;
        case 1:
          assert.equal(t.delete(scope, address), model.delete(key), `delete ${key}`);
          break;
        default: {
          const found = t.get(scope, address);
          const expected = model.get(key);
          assert.equal(found?.addedAt, expected?.addedAt, `get ${key}`);
          assert.equal(found?.messageId, expected?.messageId, `messageId ${key}`);
        }
      }
    }
    assert.equal(t.size, model.size);
    assert.deepEqual([...t.entries()].map((e) => `${e.scope} ${e.address}`).sort(), [...model.keys()].sort());
  });

  test('an address with non-ASCII characters (SMTPUTF8) is found and told apart', () => {
    const t = new SuppressionTable();
    t.set(entry({ address: 'josé@exämple.org' }));
    assert.equal(t.reasonFor('josé@exämple.org', '', NOW), 'hard-bounce');
    assert.equal(t.reasonFor('jose@exämple.org', '', NOW), undefined);
    assert.equal(t.reasonFor('josé@example.org', '', NOW), undefined);
    assert.equal(t.get('*', 'josé@exämple.org')?.address, 'josé@exämple.org');
  });
});
