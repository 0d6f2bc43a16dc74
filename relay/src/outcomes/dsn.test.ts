import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDsn, dsnStatus, headerSection, shouldSendDsn, statusCodeOf, type DsnInput } from './dsn.ts';

const dsnInput = (over: Partial<DsnInput> = {}): DsnInput => ({
  reportingMta: 'relay.example.net',
  queueId: 'Q1',
  originalSender: 'sender@example.com',
  arrivalDate: new Date(0),
  recipients: [
    {
      address: 'gone@example.org',
      status: '5.1.1',
      reply: '550 5.1.1 User unknown',
      remoteMta: 'mx.example.org',
    },
  ],
  originalHeaders: 'Subject: hi\r\nFrom: sender@example.com',
  now: new Date(1000),
  boundary: 'B0UND',
  messageId: 'dsn.Q1@relay.example.net',
  ...over,
});
const dsn = () => buildDsn(dsnInput()).toString();

test('a DSN is a multipart/report with a delivery-status part per RFC 3464', () => {
  const text = dsn();
  assert.match(text, /Content-Type: multipart\/report; report-type=delivery-status; boundary="B0UND"/);
  assert.match(text, /Content-Type: message\/delivery-status\r\n\r\nReporting-MTA: dns; relay.example.net/);
  assert.match(text, /Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1/);
  assert.match(text, /Diagnostic-Code: smtp; 550 5.1.1 User unknown/);
  assert.match(text, /Content-Type: text\/rfc822-headers\r\n\r\nSubject: hi\r\nFrom: sender@example.com/);
  assert.match(
    text,
    /^From: Mail Delivery System <MAILER-DAEMON@relay.example.net>\r\nTo: <sender@example.com>/,
  );
});

test('no DSN goes to the null sender, and none when turned off', () => {
  assert.equal(shouldSendDsn('', true), false);
  assert.equal(shouldSendDsn('a@b.c', false), false);
  assert.equal(shouldSendDsn('a@b.c', true), true);
});

test('the status comes from the enhanced code, expiry is 4.4.7', () => {
  assert.equal(statusCodeOf('550 5.1.1 User unknown', false), '5.1.1');
  assert.equal(statusCodeOf('451 4.4.1 connection refused', true), '4.4.7');
  assert.equal(statusCodeOf('554 rejected', false), '5.0.0');
});

test('headerSection stops at the empty line', () => {
  assert.equal(headerSection(Buffer.from('A: 1\r\nB: 2\r\n\r\nbody')), 'A: 1\r\nB: 2');
});

test('RET=FULL returns the whole original as message/rfc822; otherwise only its headers', () => {
  const original = Buffer.from('Subject: hi\r\nFrom: sender@example.com\r\n\r\nthe body\r\n');
  const base = dsnInput({ originalHeaders: headerSection(original) });
  const full = buildDsn({ ...base, fullOriginal: original }).toString();
  assert.ok(
    full.endsWith(`Content-Type: message/rfc822\r\n\r\n${original.toString()}--B0UND--\r\n`),
    'the original, byte for byte, closes the report',
  );
  assert.doesNotMatch(full, /text\/rfc822-headers/);
  const headers = buildDsn(base).toString();
  assert.match(
    headers,
    /Content-Type: text\/rfc822-headers\r\n\r\nSubject: hi\r\nFrom: sender@example.com\r\n\r\n--B0UND--/,
  );
  assert.doesNotMatch(headers, /the body/);
});

test('ENVID and ORCPT come back as Original-Envelope-Id and Original-Recipient (RFC 3464 §2.2.1, §2.3.1)', () => {
  const text = buildDsn(
    dsnInput({
      recipients: [
        {
          address: 'gone@example.org',
          status: '5.1.1',
          reply: '550 5.1.1 User unknown',
          orcpt: 'rfc822;alias@example.org',
        },
        { address: 'other@example.org', status: '5.1.1', reply: '550 5.1.1 User unknown' },
      ],
      originalHeaders: 'Subject: hi',
      envid: 'QQ314159',
    }),
  ).toString();
  assert.match(
    text,
    /message\/delivery-status\r\n\r\nOriginal-Envelope-Id: QQ314159\r\nReporting-MTA: dns; relay.example.net/,
  );
  assert.match(
    text,
    /Original-Recipient: rfc822;alias@example.org\r\nFinal-Recipient: rfc822; gone@example.org/,
  );
  assert.match(
    text,
    /\r\n\r\nFinal-Recipient: rfc822; other@example.org/,
    'no Original-Recipient without ORCPT',
  );
});

test('the action decides the subject, the summary, the Action field and the class of the Status', async (t) => {
  const cases = [
    {
      action: 'failed' as const,
      subject: /Undelivered Mail Returned to Sender/,
      summary: /could not be delivered to/,
    },
    {
      action: 'delayed' as const,
      subject: /Delayed Mail \(still being retried\)/,
      summary: /do not need to send it again/,
    },
    {
      action: 'relayed' as const,
      subject: /Relayed Mail Delivery Report/,
      summary: /no further notification/,
    },
  ];
  for (const c of cases)
    await t.test(c.action, () => {
      const text = buildDsn(dsnInput({ action: c.action })).toString();
      assert.match(text, c.subject);
      assert.match(text, c.summary);
      assert.match(text, new RegExp(`\r\nAction: ${c.action}\r\n`));
    });
  await t.test(
    'Will-Retry-Until (RFC 3464 §2.3.9) in a delayed report only, per recipient, after its Status',
    () => {
      const until = new Date(Date.UTC(2026, 11, 6, 4, 0, 0));
      const recipients = [
        { address: 'a@example.org', status: '4.4.1', reply: '451 4.4.1 later' },
        { address: 'b@example.org', status: '4.0.0', reply: 'connect ECONNREFUSED' },
      ];
      const delayed = buildDsn(dsnInput({ action: 'delayed', recipients, willRetryUntil: until })).toString();
      assert.equal(delayed.match(/\r\nWill-Retry-Until: Sun, 06 Dec 2026 04:00:00 GMT\r\n/g)?.length, 2);
      assert.match(
        delayed,
        /Final-Recipient: rfc822; b@example.org\r\nAction: delayed\r\nStatus: 4\.0\.0\r\nWill-Retry-Until: /,
      );
      for (const action of ['failed', 'relayed'] as const)
        assert.doesNotMatch(
          buildDsn(dsnInput({ action, willRetryUntil: until })).toString(),
          /Will-Retry-Until/,
          action,
        );
      assert.doesNotMatch(
        buildDsn(dsnInput({ action: 'delayed', recipients })).toString(),
        /Will-Retry-Until/,
      );
    },
  );
  const statuses: [Parameters<typeof dsnStatus>, string][] = [
    [['delayed', '451 4.4.1 connection refused', false], '4.4.1'],
    [['delayed', 'connect ECONNREFUSED', false], '4.0.0'],
    [['delayed', '550 5.1.1 odd', false], '4.0.0'],
    [['relayed', '250 2.0.0 Ok: queued', false], '2.0.0'],
    [['relayed', '250 Ok', false], '2.0.0'],
    [['relayed', '250 2.6.0 queued as X', false], '2.6.0'],
    [['failed', '550 5.1.1 User unknown', false], '5.1.1'],
  ];
  for (const [args, want] of statuses)
    await t.test(`status of ${args[0]} after "${args[1]}"`, () => assert.equal(dsnStatus(...args), want));
});
