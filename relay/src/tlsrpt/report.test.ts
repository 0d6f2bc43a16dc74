import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { buildTlsReport, gzipReport, reportFileName, reportMail } from './report.ts';
import { aggregate, attemptKey, attemptOfKey, dayPeriod, TlsTally, type TlsAttempt } from './tally.ts';
import { stsDescription, tlsaDescription } from './describe.ts';

const DAY = Date.parse('2026-12-04T10:00:00Z');
const STS = stsDescription({ mode: 'enforce', mx: ['mx1.example.net', '*.mx.example.net'], maxAge: 86400 });
const attempt = (over: Partial<TlsAttempt>): TlsAttempt => ({
  domain: 'example.net',
  policy: 'mta-sts',
  result: 'success',
  mx: 'mx1.example.net',
  address: '192.0.2.1',
  sendingIp: '198.51.100.7',
  ...STS,
  ...over,
});

function tallied() {
  const tally = new TlsTally();
  tally.record(attempt({}), DAY);
  tally.record(attempt({}), DAY + 1000);
  tally.record(attempt({ result: 'certificate-expired' }), DAY);
  tally.record(attempt({ result: 'certificate-expired' }), DAY);
  // From another of our addresses: its own failure-details entry (RFC 8460 §4.3 sending-mta-ip).
  tally.record(attempt({ result: 'certificate-expired', sendingIp: '198.51.100.8' }), DAY);
  tally.record(attempt({ result: 'certificate-expired', mx: 'a.mx.example.net', address: '192.0.2.2' }), DAY);
  tally.record(
    attempt({
      policy: 'dane',
      result: 'tlsa-invalid',
      mx: 'mx2.example.net',
      // No local address known: no sending-mta-ip.
      sendingIp: '',
      ...tlsaDescription('mx2.example.net', [
        { usage: 3, selector: 1, matchingType: 1, data: Buffer.from('ab', 'hex') },
      ]),
    }),
    DAY,
  );
  tally.record(
    attempt({ domain: 'other.example', policy: 'opportunistic', policyString: [], mxHost: [] }),
    DAY,
  );
  // The next day: not part of the report of the 4th.
  tally.record(attempt({}), Date.parse('2026-12-05T00:00:01Z'));
  return tally;
}

test('a day is reported only once it is over, and only once', () => {
  const tally = tallied();
  assert.deepEqual(tally.finishedDays(Date.parse('2026-12-04T23:59:59Z')), []);
  assert.deepEqual(tally.finishedDays(Date.parse('2026-12-05T00:10:00Z')), ['2026-12-04']);
  tally.take('2026-12-04');
  assert.deepEqual(tally.finishedDays(Date.parse('2026-12-05T00:10:00Z')), []);
  assert.deepEqual(tally.finishedDays(Date.parse('2026-12-06T00:10:00Z')), ['2026-12-05']);
});

test('the report has the fields of RFC 8460 §4.4, sessions counted per policy and failure', () => {
  const policies = aggregate(tallied().take('2026-12-04')).get('example.net')!;
  const report = buildTlsReport({
    organizationName: 'Example Sender',
    contactInfo: 'tls@sender.example',
    reportId: 'r1',
    period: dayPeriod('2026-12-04'),
    policyDomain: 'example.net',
    policies,
  });
  assert.equal(report['organization-name'], 'Example Sender');
  assert.deepEqual(report['date-range'], {
    'start-datetime': '2026-12-04T00:00:00Z',
    'end-datetime': '2026-12-04T23:59:59Z',
  });
  assert.equal(report['contact-info'], 'tls@sender.example');
  assert.equal(report['report-id'], 'r1');
  assert.deepEqual(report.policies, [
    {
      policy: {
        'policy-type': 'sts',
        'policy-string': [
          'version: STSv1',
          'mode: enforce',
          'mx: mx1.example.net',
          'mx: *.mx.example.net',
          'max_age: 86400',
        ],
        'policy-domain': 'example.net',
        'mx-host': ['mx1.example.net', '*.mx.example.net'],
      },
      summary: { 'total-successful-session-count': 2, 'total-failure-session-count': 4 },
      'failure-details': [
        {
          'result-type': 'certificate-expired',
          'sending-mta-ip': '198.51.100.7',
          'receiving-mx-hostname': 'mx1.example.net',
          'receiving-ip': '192.0.2.1',
          'failed-session-count': 2,
        },
        {
          'result-type': 'certificate-expired',
          'sending-mta-ip': '198.51.100.8',
          'receiving-mx-hostname': 'mx1.example.net',
          'receiving-ip': '192.0.2.1',
          'failed-session-count': 1,
        },
        {
          'result-type': 'certificate-expired',
          'sending-mta-ip': '198.51.100.7',
          'receiving-mx-hostname': 'a.mx.example.net',
          'receiving-ip': '192.0.2.2',
          'failed-session-count': 1,
        },
      ],
    },
    {
      policy: {
        'policy-type': 'tlsa',
        'policy-string': ['3 1 1 ab'],
        'policy-domain': 'example.net',
        'mx-host': ['mx2.example.net'],
      },
      summary: { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
      'failure-details': [
        {
          'result-type': 'tlsa-invalid',
          'receiving-mx-hostname': 'mx2.example.net',
          'receiving-ip': '192.0.2.1',
          'failed-session-count': 1,
        },
      ],
    },
  ]);
  assert.deepEqual(JSON.parse(gunzipSync(gzipReport(report)).toString()), report);
});

test('counts kept before sendingIp was recorded (7-field keys) read back without one', () => {
  const a = attempt({ result: 'certificate-expired' });
  const older = JSON.stringify([a.domain, a.policy, a.result, a.mx, a.address, a.policyString, a.mxHost]);
  assert.deepEqual(attemptOfKey(older), { ...a, sendingIp: '' });
  assert.deepEqual(attemptOfKey(attemptKey(a)), a);
});

test('opportunistic deliveries are reported as no-policy-found', () => {
  const [p] = aggregate(tallied().take('2026-12-04')).get('other.example')!;
  assert.equal(p?.type, 'no-policy-found');
  assert.equal(p?.successes, 1);
});

test('the file name and the message follow RFC 8460 §5.3', () => {
  assert.equal(
    reportFileName('sender.example', 'example.net', dayPeriod('2026-12-04'), 'u1'),
    'sender.example!example.net!1796342400!1796428799!u1.json.gz',
  );
  const gz = gzipReport({ a: 1 });
  const mail = reportMail({
    from: 'tlsrpt@sender.example',
    to: ['tls@example.net'],
    submitter: 'sender.example',
    policyDomain: 'example.net',
    reportId: 'r1',
    period: dayPeriod('2026-12-04'),
    uniqueId: 'u1',
    gzipped: gz,
    date: new Date('2026-12-05T00:10:00Z'),
    messageId: 'r1',
    boundary: 'b1',
  }).toString();
  assert.match(mail, /^Subject: Report Domain: example\.net Submitter: sender\.example Report-ID: <r1>\r$/m);
  assert.match(mail, /^TLS-Report-Domain: example\.net\r$/m);
  assert.match(mail, /^TLS-Report-Submitter: sender\.example\r$/m);
  assert.match(mail, /^Content-Type: multipart\/report; report-type="tlsrpt"; boundary="b1"\r$/m);
  assert.match(mail, /^Content-Type: application\/tlsrpt\+gzip\r$/m);
  assert.match(mail, /filename="sender\.example!example\.net!1796342400!1796428799!u1\.json\.gz"/);
  const attachment = /\.json\.gz"\r\n\r\n([A-Za-z0-9+/=\r\n]+)--b1--\r\n$/.exec(mail)?.[1] ?? '';
  assert.deepEqual(JSON.parse(gunzipSync(Buffer.from(attachment, 'base64')).toString()), { a: 1 });
});
