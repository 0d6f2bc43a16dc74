import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyReply, type Classification } from './classify.ts';

const cases: [string, number | undefined, string, Classification][] = [
  ['250 is delivered', 250, '250 2.0.0 Ok: queued', { outcome: 'delivered' }],
  ['421 is deferred', 421, '421 4.3.2 try later', { outcome: 'deferred' }],
  ['451 greylisting is deferred', 451, '451 4.7.1 greylisted', { outcome: 'deferred' }],
  ['no reply (connection refused) is deferred', undefined, 'connect ECONNREFUSED', { outcome: 'deferred' }],
  [
    '550 5.1.1 is a bad mailbox',
    550,
    '550 5.1.1 <x@y>: Recipient address rejected: User unknown',
    { outcome: 'bounced', category: 'bad-mailbox' },
  ],
  [
    '550 5.1.2 is a bad domain',
    550,
    '550 5.1.2 bad destination system',
    { outcome: 'bounced', category: 'bad-domain' },
  ],
  [
    '552 5.2.2 is a full mailbox',
    552,
    '552 5.2.2 Mailbox full',
    { outcome: 'bounced', category: 'mailbox-full' },
  ],
  [
    '552 5.3.4 is message content',
    552,
    '552 5.3.4 Message too big',
    { outcome: 'bounced', category: 'content' },
  ],
  [
    '554 5.7.1 is a policy block',
    554,
    '554 5.7.1 Message rejected as spam',
    { outcome: 'bounced', category: 'policy' },
  ],
  [
    '550 5.4.6 is routing',
    550,
    '550 5.4.6 Routing loop detected',
    { outcome: 'bounced', category: 'routing' },
  ],
  [
    '554 5.6.0 is content',
    554,
    '554 5.6.0 Message content rejected',
    { outcome: 'bounced', category: 'content' },
  ],
  [
    '550 without enhanced code but "user unknown" is a bad mailbox',
    550,
    '550 user unknown',
    { outcome: 'bounced', category: 'bad-mailbox' },
  ],
  [
    '550 5.0.0 with a blocklist text is policy',
    550,
    '550 5.0.0 blocked by Spamhaus',
    { outcome: 'bounced', category: 'policy' },
  ],
  [
    '554 with an unknown text is other',
    554,
    '554 transaction failed',
    { outcome: 'bounced', category: 'other' },
  ],
  [
    'over quota text without enhanced code is a full mailbox',
    552,
    '552 Requested action aborted: over quota',
    { outcome: 'bounced', category: 'mailbox-full' },
  ],
];

for (const [name, code, text, expected] of cases) {
  test(name, () => {
    assert.deepEqual(classifyReply(code === undefined ? { text } : { code, text }), expected);
  });
}
