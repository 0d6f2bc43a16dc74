import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeChange,
  encodeChange,
  entryFrom,
  entryFromFeedback,
  parseImportLine,
  suppressedReply,
  type SuppressionChange,
  type SuppressionEntry,
} from './entry.ts';

const NOW = Date.parse('2026-12-05T12:00:00Z');

function entry(over: Partial<SuppressionEntry> = {}): SuppressionEntry {
  return {
    address: 'gone@example.org',
    scope: '*',
    reason: 'hard-bounce',
    source: 'smtp',
    messageId: 'MXQ1',
    addedAt: NOW,
    expiresAt: 0,
    ...over,
  };
}

describe('suppression entry', () => {
  const changes: [string, SuppressionChange][] = [
    ['a pool-wide hard bounce', { op: 'add', entry: entry() }],
    [
      'a complaint for one sending domain that expires',
      {
        op: 'add',
        entry: entry({ scope: 'news.example.com', reason: 'complaint', source: 'arf', expiresAt: NOW + 1 }),
      },
    ],
    [
      'a manual entry without message id',
      { op: 'add', entry: entry({ reason: 'manual', source: 'api', messageId: '' }) },
    ],
    ['a removal', { op: 'remove', scope: '*', address: 'gone@example.org', at: NOW }],
  ];
  for (const [name, change] of changes)
    test(`journal line round trip: ${name}`, () => {
      const line = encodeChange(change);
      assert.ok(!line.includes('\n'));
      assert.deepEqual(decodeChange(line), change);
    });

  const damaged: [string, string][] = [
    ['a torn line', encodeChange({ op: 'add', entry: entry() }).slice(0, 30)],
    [
      'an unknown reason',
      JSON.stringify({ o: 'a', s: '*', a: 'x@y.z', r: 'spite', src: 'api', m: '', t: 1, x: 0 }),
    ],
    ['an unknown op', JSON.stringify({ o: 'z', s: '*', a: 'x@y.z', t: 1 })],
    ['not an object', '42'],
  ];
  for (const [name, line] of damaged)
    test(`a damaged journal line decodes to nothing: ${name}`, () =>
      assert.equal(decodeChange(line), undefined));

  test('user input is normalised and defaulted', () => {
    const made = entryFrom({ address: ' Gone@Example.ORG ' }, { now: NOW, source: 'api' });
    assert.ok(made.ok);
    assert.equal(made.entry.address, 'gone@example.org');
    assert.equal(made.entry.scope, '*');
    assert.equal(made.entry.reason, 'manual');
    assert.equal(made.entry.source, 'api');
    assert.equal(made.entry.addedAt, NOW);
    assert.equal(made.entry.expiresAt, 0);
  });

  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['no address', {}, /address is required/],
    ['a percent-hack address', { address: 'a%b@example.org' }, /plain mailbox/],
    ['an address with a comma', { address: 'a,b@example.org' }, /plain mailbox/],
    ['no domain', { address: 'postmaster' }, /plain mailbox/],
    ['a bad scope', { address: 'a@example.org', scope: 'not a domain' }, /scope/],
    ['an unknown reason', { address: 'a@example.org', reason: 'dislike' }, /reason/],
    ['an unreadable expiry', { address: 'a@example.org', expiresAt: 'next week' }, /expiresAt/],
  ];
  for (const [name, input, error] of refused)
    test(`user input refused: ${name}`, () => {
      const made = entryFrom(input, { now: NOW, source: 'api' });
      assert.equal(made.ok, false);
      assert.match(!made.ok ? made.error : '', error);
    });

  const imports: [string, string, Partial<SuppressionEntry> | 'skip' | 'error'][] = [
    [
      'a bare address',
      'a@example.org',
      { address: 'a@example.org', scope: '*', reason: 'manual', source: 'import' },
    ],
    [
      'CSV with scope, reason and expiry',
      'a@example.org, news.example.com, complaint, 2027-01-01T00:00:00Z',
      { scope: 'news.example.com', reason: 'complaint', expiresAt: Date.parse('2027-01-01T00:00:00Z') },
    ],
    [
      'a line of an export',
      JSON.stringify({
        address: 'b@example.org',
        scope: '*',
        reason: 'hard-bounce',
        source: 'dsn',
        messageId: 'm1',
        addedAt: '2026-01-01T00:00:00.000Z',
        expiresAt: null,
      }),
      {
        address: 'b@example.org',
        reason: 'hard-bounce',
        source: 'dsn',
        messageId: 'm1',
        addedAt: Date.parse('2026-01-01T00:00:00Z'),
      },
    ],
    ['a CSV header', 'email', 'skip'],
    ['a comment', '# exported from elsewhere', 'skip'],
    ['a blank line', '   ', 'skip'],
    ['broken JSON', '{"address":', 'error'],
    ['garbage', 'not an address', 'error'],
  ];
  for (const [name, line, expected] of imports)
    test(`import line: ${name}`, () => {
      const parsed = parseImportLine(line, NOW);
      if (expected === 'skip') return assert.equal(parsed, undefined);
      assert.ok(parsed);
      if (expected === 'error') return assert.equal(parsed.ok, false);
      assert.ok(parsed.ok);
      for (const [k, v] of Object.entries(expected))
        assert.equal(parsed.entry[k as keyof SuppressionEntry], v, k);
    });

  const feedback: [string, Parameters<typeof entryFromFeedback>[0], Partial<SuppressionEntry>][] = [
    [
      'a hard bounce holds for the whole pool',
      {
        recipient: 'Gone@Example.org',
        kind: 'hard-bounce',
        sendingDomain: 'example.com',
        messageId: 'Q1',
        source: 'smtp',
      },
      { address: 'gone@example.org', scope: '*', reason: 'hard-bounce', expiresAt: NOW + 1000 },
    ],
    [
      'a complaint holds for its sending domain',
      {
        recipient: 'r@example.org',
        kind: 'complaint',
        sendingDomain: 'News.Example.com',
        messageId: 'Q2',
        source: 'arf',
      },
      { scope: 'news.example.com', reason: 'complaint', source: 'arf', expiresAt: 0 },
    ],
    [
      'a complaint about an unknown sending domain holds for the pool',
      { recipient: 'r@example.org', kind: 'complaint', sendingDomain: '', messageId: '', source: 'arf' },
      { scope: '*' },
    ],
  ];
  for (const [name, f, expected] of feedback)
    test(`feedback: ${name}`, () => {
      const e = entryFromFeedback(f, { hardBounceTtlMs: 1000, complaintTtlMs: 0 }, NOW);
      for (const [k, v] of Object.entries(expected)) assert.equal(e[k as keyof SuppressionEntry], v, k);
    });

  test('the RCPT reply is a permanent 550 whose enhanced code and text say why', () => {
    assert.deepEqual(
      [suppressedReply('hard-bounce'), suppressedReply('complaint'), suppressedReply('manual')].map((r) => [
        r.code,
        r.enhanced,
      ]),
      [
        [550, '5.1.1'],
        [550, '5.7.1'],
        [550, '5.7.1'],
      ],
    );
    assert.match(suppressedReply('complaint').message, /suppressed.*spam/);
  });
});
