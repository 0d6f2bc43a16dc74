import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LimitMatch, MessageTraits } from './match.ts';
import { destinationKey, domainMatches, limitMatches } from './match.ts';

const match = (m: Partial<LimitMatch> = {}): LimitMatch => ({
  senderDomains: [],
  senderAddresses: [],
  recipientDomains: [],
  recipientMXHosts: [],
  ...m,
});
const message = (m: Partial<MessageTraits> = {}): MessageTraits => ({
  sender: 'news@news.example.com',
  senderDomain: 'news.example.com',
  recipientDomain: 'gmail.com',
  mxHosts: ['gmail-smtp-in.l.google.com', 'alt1.gmail-smtp-in.l.google.com'],
  ...m,
});

describe('domainMatches', () => {
  const cases: Array<[string, string, boolean]> = [
    ['example.com', 'example.com', true],
    ['example.com', 'EXAMPLE.com', true],
    ['example.com', 'mail.example.com', false],
    ['*.example.com', 'mail.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'badexample.com', false],
  ];
  for (const [pattern, domain, expected] of cases) {
    test(`${pattern} ${expected ? 'matches' : 'does not match'} ${domain}`, () =>
      assert.equal(domainMatches(pattern, domain), expected));
  }
});

describe('limitMatches', () => {
  const cases: Array<[string, LimitMatch, MessageTraits, boolean]> = [
    ['an empty match applies to everything', match(), message(), true],
    ['a sender domain matches', match({ senderDomains: ['news.example.com'] }), message(), true],
    ['another sender domain does not', match({ senderDomains: ['example.com'] }), message(), false],
    [
      'a sender address matches case-insensitively',
      match({ senderAddresses: ['NEWS@news.example.com'] }),
      message(),
      true,
    ],
    [
      'a recipient wildcard matches',
      match({ recipientDomains: ['*.yahoo.com'] }),
      message({ recipientDomain: 'mail.yahoo.com' }),
      true,
    ],
    [
      'MX rollup matches a domain hosted at Google',
      match({ recipientMXHosts: ['*.google.com'] }),
      message({ recipientDomain: 'customer.example' }),
      true,
    ],
    [
      'MX rollup does not match without MX hosts',
      match({ recipientMXHosts: ['*.google.com'] }),
      message({ mxHosts: [] }),
      false,
    ],
    [
      'all criteria must match',
      match({ senderDomains: ['news.example.com'], recipientDomains: ['yahoo.com'] }),
      message(),
      false,
    ],
  ];
  for (const [name, m, msg, expected] of cases)
    test(name, () => assert.equal(limitMatches(m, msg), expected));
});

describe('destinationKey', () => {
  test('with MX rollup, domains with the same MX hosts share one key', () => {
    const m = match({ recipientMXHosts: ['*.google.com'] });
    const a = destinationKey(m, message({ recipientDomain: 'gmail.com' }));
    const b = destinationKey(
      m,
      message({
        recipientDomain: 'customer.example',
        mxHosts: ['ALT1.gmail-smtp-in.l.google.com.', 'gmail-smtp-in.l.google.com'],
      }),
    );
    assert.equal(a, b);
    assert.equal(a, 'mx:alt1.gmail-smtp-in.l.google.com,gmail-smtp-in.l.google.com');
  });
  test('without MX rollup the key is the recipient domain', () => {
    assert.equal(destinationKey(match(), message({ recipientDomain: 'Yahoo.com' })), 'yahoo.com');
  });
});
