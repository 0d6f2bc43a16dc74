import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDeliveryStatus, parseBounceText } from './dsn.ts';
import { parseFeedbackReport } from './arf.ts';

const dsn = (recipient: string) => `Reporting-MTA: dns; mx.example.net\r\n\r\n${recipient}`;

const statusCases: [string, string, Partial<ReturnType<typeof parseDeliveryStatus>[number]>][] = [
  [
    'a 5.1.1 failure is a hard bad-mailbox bounce',
    'Final-Recipient: rfc822; Ann@Example.org\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n',
    {
      recipient: 'ann@example.org',
      action: 'failed',
      status: '5.1.1',
      severity: 'hard',
      category: 'bad-mailbox',
    },
  ],
  [
    'a continued Diagnostic-Code line is joined',
    'Final-Recipient: rfc822; a@x.test\r\nAction: failed\r\nStatus: 5.7.1\r\nDiagnostic-Code: smtp; 550 5.7.1 message\r\n    rejected as spam\r\n',
    { diagnostic: '550 5.7.1 message rejected as spam', severity: 'hard', category: 'policy' },
  ],
  [
    'a full mailbox is permanent by code but soft for suppression',
    'Final-Recipient: rfc822; a@x.test\r\nAction: failed\r\nStatus: 5.2.2\r\n',
    { severity: 'soft', category: 'mailbox-full' },
  ],
  [
    'a 4.x.x failure is soft',
    'Final-Recipient: rfc822; a@x.test\r\nAction: failed\r\nStatus: 4.4.7\r\n',
    { severity: 'soft' },
  ],
  [
    'delayed is no bounce',
    'Final-Recipient: rfc822; a@x.test\r\nAction: delayed\r\nStatus: 4.4.1\r\n',
    { action: 'delayed', severity: 'none' },
  ],
  [
    'a missing Status is taken from the diagnostic',
    'Final-Recipient: rfc822; a@x.test\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 5.1.2 host unknown\r\n',
    { status: '5.1.2', category: 'bad-domain' },
  ],
  [
    'an unknown Action counts as failed',
    'Final-Recipient: rfc822; a@x.test\r\nAction: bounced (permanent)\r\nStatus: 5.1.1\r\n',
    { action: 'failed', severity: 'hard' },
  ],
];
for (const [name, group, expected] of statusCases) {
  test(`delivery-status: ${name}`, () => {
    const [entry, ...rest] = parseDeliveryStatus(dsn(group));
    assert.equal(rest.length, 0, 'the per-message group is not a recipient');
    for (const [key, value] of Object.entries(expected))
      assert.equal(entry?.[key as keyof typeof entry], value, key);
  });
}

test('delivery-status: each recipient group is one entry', () => {
  const text = dsn(
    'Final-Recipient: rfc822; a@x.test\nAction: failed\nStatus: 5.1.1\n\nFinal-Recipient: rfc822; b@x.test\nAction: delivered\nStatus: 2.0.0\n',
  );
  assert.deepEqual(
    parseDeliveryStatus(text).map((r) => [r.recipient, r.action]),
    [
      ['a@x.test', 'failed'],
      ['b@x.test', 'delivered'],
    ],
  );
});

const textCases: [string, string, { action?: string; status?: string; recipient?: string } | undefined][] = [
  [
    'qmail names the address in angle brackets and quotes the reply',
    'Hi. This is the qmail-send program.\n<ann@example.org>:\n1.2.3.4 does not like recipient.\nRemote host said: 550 5.1.1 unknown user\n',
    { action: 'failed', status: '5.1.1', recipient: 'ann@example.org' },
  ],
  [
    'a reply code without an enhanced code gets a class default',
    'SMTP error from remote mail server after RCPT TO:<a@x.test>:\n550 No such user here\n',
    { action: 'failed', status: '5.0.0' },
  ],
  [
    'a warning that says it will retry is delayed',
    'Your message has not been delivered yet. The server will continue to try.\n451 4.4.1 timeout\n',
    { action: 'delayed' },
  ],
  ['prose without any code is not a bounce', 'Thank you for your message.', undefined],
];
for (const [name, body, expected] of textCases) {
  test(`bounce text: ${name}`, () => {
    const entry = parseBounceText(body);
    if (!expected) return assert.equal(entry, undefined);
    for (const [key, value] of Object.entries(expected))
      assert.equal(entry?.[key as keyof typeof entry], value, key);
  });
}

test('ARF: the fields of a feedback report, address types stripped', () => {
  const report = parseFeedbackReport(
    'Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 1\r\nOriginal-Mail-From: <bnc-x@bounces.example.com>\r\nOriginal-Rcpt-To: <Ann@example.org>\r\nSource-IP: 192.0.2.1\r\nReported-Domain: example.com\r\nArrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n',
  );
  assert.deepEqual(report, {
    feedbackType: 'abuse',
    userAgent: 'Yahoo!-Mail-Feedback/2.0',
    originalRecipient: 'ann@example.org',
    originalMailFrom: 'bnc-x@bounces.example.com',
    sourceIp: '192.0.2.1',
    reportedDomain: 'example.com',
    arrivalDate: 'Thu, 8 Mar 2005 14:00:00 EDT',
  });
});

const arfTypes: [string, string, string | undefined][] = [
  ['not-spam is kept as itself', 'Feedback-Type: not-spam\n', 'not-spam'],
  ['an unregistered type is other', 'Feedback-Type: opt-out\n', 'other'],
  ['no Feedback-Type is no report', 'User-Agent: x\n', undefined],
];
for (const [name, text, type] of arfTypes) {
  test(`ARF: ${name}`, () => assert.equal(parseFeedbackReport(text)?.feedbackType, type));
}
