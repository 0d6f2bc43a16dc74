import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ROLE,
  entriesTable,
  listPath,
  mergeEntries,
  parseSuppressionArgs,
  type ListedEntry,
} from './suppression.ts';

function entry(over: Partial<ListedEntry> = {}): ListedEntry {
  return {
    address: 'gone@example.org',
    scope: '*',
    reason: 'hard-bounce',
    source: 'smtp',
    messageId: '',
    addedAt: '2026-12-05T10:00:00.000Z',
    expiresAt: null,
    ...over,
  };
}

describe('mailfleet suppression', () => {
  const usageErrors: [string, string[], RegExp][] = [
    ['no command', ['--pool', 'p'], /unknown command/],
    ['add without an address', ['add', '--pool', 'p'], /add needs an address/],
    ['import without a file', ['import', '--pool', 'p'], /import needs a file/],
    ['list with an argument', ['list', 'x', '--pool', 'p'], /takes no argument/],
    ['no pool', ['list'], /--pool is required/],
    ['an unknown reason', ['add', 'a@example.org', '--pool', 'p', '--reason', 'spite'], /--reason/],
    ['an unreadable expiry', ['add', 'a@example.org', '--pool', 'p', '--expires', 'soon'], /--expires/],
    ['a bad limit', ['list', '--pool', 'p', '--limit', '0'], /--limit/],
  ];
  for (const [name, args, error] of usageErrors)
    test(`usage error: ${name}`, () => {
      const parsed = parseSuppressionArgs(args);
      assert.ok('error' in parsed);
      assert.match(parsed.error, error);
    });

  test('add parses the address, scope, reason and expiry', () => {
    const parsed = parseSuppressionArgs([
      'add',
      'a@example.org',
      '--pool',
      'outbound',
      '-n',
      'mail',
      '--scope',
      'news.example.com',
      '--reason',
      'complaint',
      '--expires',
      '2027-01-01T00:00:00Z',
    ]);
    assert.ok(!('error' in parsed));
    assert.equal(parsed.argument, 'a@example.org');
    assert.equal(parsed.namespace, 'mail');
    assert.equal(parsed.scope, 'news.example.com');
    assert.equal(parsed.reason, 'complaint');
    assert.equal(parsed.expires, '2027-01-01T00:00:00Z');
  });

  test('reading commands use the read token, changing ones the admin token', () => {
    assert.deepEqual(ROLE, { list: 'read', export: 'read', add: 'admin', remove: 'admin', import: 'admin' });
  });

  test('list asks the relay with its filters', () => {
    const parsed = parseSuppressionArgs([
      'list',
      '--pool',
      'p',
      '--address',
      'a@example.org',
      '--reason',
      'complaint',
    ]);
    assert.ok(!('error' in parsed));
    assert.equal(listPath(parsed), '/api/suppressions?limit=100&address=a%40example.org&reason=complaint');
  });

  test('merge keeps one entry per scope and address, the earliest', () => {
    const merged = mergeEntries([
      [entry({ addedAt: '2026-12-05T11:00:00.000Z', source: 'api' }), entry({ scope: 'news.example.com' })],
      [entry(), entry({ address: 'other@example.org' })],
    ]);
    assert.deepEqual(
      merged.map((e) => [e.scope, e.address, e.source]),
      [
        ['*', 'gone@example.org', 'smtp'],
        ['news.example.com', 'gone@example.org', 'smtp'],
        ['*', 'other@example.org', 'smtp'],
      ],
    );
  });

  test('the table has a header and one aligned line per entry', () => {
    const lines = entriesTable([
      entry(),
      entry({ address: 'a@b.example', expiresAt: '2027-01-01T00:00:00.000Z' }),
    ])
      .trimEnd()
      .split('\n');
    assert.match(lines[0] ?? '', /^ADDRESS\s+SCOPE\s+REASON\s+SOURCE\s+ADDED\s+EXPIRES$/);
    assert.match(
      lines[1] ?? '',
      /^gone@example.org\s+\*\s+hard-bounce\s+smtp\s+2026-12-05T10:00:00.000Z\s+never$/,
    );
    assert.match(lines[2] ?? '', /2027-01-01T00:00:00.000Z$/);
  });
});
