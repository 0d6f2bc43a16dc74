import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectPolicy,
  mailFromPolicy,
  rcptToPolicy,
  submissionLimitPolicy,
  type MailFromInput,
  type RcptToInput,
} from './intake.ts';
import { networkMatcher } from './networks.ts';

const mailFrom = (over: Partial<MailFromInput> = {}): MailFromInput => ({
  address: 'news@example.com',
  authenticatedUser: undefined,
  clientInAllowedNetworks: true,
  authMode: 'Disabled',
  listenerRequiresAuth: false,
  sendingDomains: [
    { domain: 'example.com', suspended: false },
    { domain: 'paused.example', suspended: true },
  ],
  spoolHasSpace: true,
  draining: false,
  ...over,
});

describe('mailFromPolicy', () => {
  const cases: [string, Partial<MailFromInput>, number | 'ok'][] = [
    ['an allowed network may relay for a sending domain', {}, 'ok'],
    ['the null sender is accepted from an allowed network', { address: '' }, 'ok'],
    [
      'a client outside the networks is denied when auth is disabled',
      { clientInAllowedNetworks: false },
      550,
    ],
    [
      'a client outside the networks must authenticate when auth is optional',
      { clientInAllowedNetworks: false, authMode: 'Optional' },
      530,
    ],
    [
      'an authenticated client may relay from anywhere',
      { clientInAllowedNetworks: false, authMode: 'Optional', authenticatedUser: 'u' },
      'ok',
    ],
    ['auth Required ignores allowed networks', { authMode: 'Required' }, 530],
    ['a domain that is not a sending domain is refused', { address: 'x@other.org' }, 550],
    [
      'a suspended sending domain is accepted (its mail is held in the queue)',
      { address: 'x@paused.example' },
      'ok',
    ],
    ['the domain comparison ignores case', { address: 'x@EXAMPLE.com' }, 'ok'],
    [
      'a full spool gives 452 before anything else',
      { spoolHasSpace: false, clientInAllowedNetworks: false },
      452,
    ],
    ['draining gives 421', { draining: true }, 421],
    ['submission needs AUTH even from an allowed network', { listenerRequiresAuth: true }, 530],
    [
      'submission accepts an authenticated user',
      { listenerRequiresAuth: true, authenticatedUser: 'u' },
      'ok',
    ],
    ['a percent hack in the sender is refused with 553', { address: 'v%evil.example@example.com' }, 553],
    ['a bang path in the sender is refused with 553', { address: 'evil.example!v@example.com' }, 553],
    ['a quoted sender hiding another domain is refused', { address: '"v@evil.example"@example.com' }, 553],
    ['a sender without a domain is refused', { address: 'postmaster' }, 553],
    [
      'a user limited to other domains may not use this one',
      { authenticatedUser: 'u', userSenderDomains: ['other.example'] },
      553,
    ],
    [
      'a user limited to this domain may use it',
      { authenticatedUser: 'u', userSenderDomains: ['example.com'] },
      'ok',
    ],
  ];
  for (const [name, over, expected] of cases) {
    test(name, () => {
      const result = mailFromPolicy(mailFrom(over));
      assert.equal('ok' in result ? 'ok' : result.code, expected);
    });
  }
  test('the full-spool reply carries 4.3.1', () => {
    assert.deepEqual(mailFromPolicy(mailFrom({ spoolHasSpace: false })), {
      code: 452,
      enhanced: '4.3.1',
      message: 'Insufficient system storage',
    });
  });
});

describe('connectPolicy', () => {
  const base = {
    draining: false,
    sessions: 1,
    sessionsFromClient: 1,
    maxConnections: 10,
    maxConnectionsPerClient: 2,
  };
  test('a session under every limit is accepted', () => assert.deepEqual(connectPolicy(base), { ok: true }));
  test('draining refuses with 421 4.3.2', () => {
    const r = connectPolicy({ ...base, draining: true });
    assert.equal('code' in r && `${r.code} ${r.enhanced}`, '421 4.3.2');
  });
  test('too many sessions overall refuses with 421', () => {
    const r = connectPolicy({ ...base, sessions: 11 });
    assert.equal('code' in r && r.code, 421);
  });
  test('too many sessions from one client refuses with 421', () => {
    const r = connectPolicy({ ...base, sessionsFromClient: 3 });
    assert.equal('code' in r && r.message, 'Too many connections from your address');
  });
});

describe('rcptToPolicy', () => {
  const rcpt = (over: Partial<RcptToInput>): RcptToInput => ({
    address: 'a@b.example',
    accepted: 0,
    maxRecipients: 2,
    authenticatedUser: undefined,
    clientInAllowedNetworks: true,
    authMode: 'Disabled',
    listenerRequiresAuth: false,
    ...over,
  });
  const reply = (r: ReturnType<typeof rcptToPolicy>) => ('code' in r ? `${r.code} ${r.enhanced}` : 'ok');
  const cases: [string, Partial<RcptToInput>, string][] = [
    ['a well-formed recipient is accepted', {}, 'ok'],
    ['the recipient after the maximum gets 452 4.5.3', { accepted: 2 }, '452 4.5.3'],
    ['a recipient without a domain is refused', { address: 'postmaster' }, '550 5.7.1'],
    ['a percent-hack recipient is refused', { address: 'v%evil.example@b.example' }, '550 5.7.1'],
    ['a bang-path recipient is refused', { address: 'evil.example!v@b.example' }, '550 5.7.1'],
    ['a quoted routing recipient is refused', { address: '"v@evil.example"@b.example' }, '550 5.7.1'],
    ['a source route left in the recipient is refused', { address: '@a.example:v@b.example' }, '550 5.7.1'],
    ['a client outside the networks is refused', { clientInAllowedNetworks: false }, '550 5.7.1'],
  ];
  for (const [name, over, expected] of cases)
    test(name, () => assert.equal(reply(rcptToPolicy(rcpt(over))), expected));
});

describe('networkMatcher', () => {
  const m = networkMatcher(['127.0.0.0/8', '10.1.2.3', 'fd00::/8']);
  const cases: [string, boolean][] = [
    ['127.0.0.1', true],
    ['::ffff:127.0.0.1', true],
    ['10.1.2.3', true],
    ['10.1.2.4', false],
    ['fd12::1', true],
    ['192.168.1.1', false],
  ];
  for (const [address, expected] of cases) {
    test(`${address} is ${expected ? '' : 'not '}in the list`, () => assert.equal(m.has(address), expected));
  }
});

test('a recipient over a Reject rate limit gets 451 4.7.0, so the client retries later', () => {
  assert.deepEqual(submissionLimitPolicy({ limitedBy: 'news' }), {
    code: 451,
    enhanced: '4.7.0',
    message: 'Rate limit exceeded, try again later',
  });
  assert.deepEqual(submissionLimitPolicy({ limitedBy: undefined }), { ok: true });
});
