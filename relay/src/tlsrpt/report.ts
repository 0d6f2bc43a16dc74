// The aggregate report of one policy domain for one UTC day (RFC 8460 §4) and the two ways it
// travels: a gzip body for `https:` (§5.4) and a multipart/report message for `mailto:` (§5.3).
// Pure (gzip included: same input, same bytes).
import { gzipSync } from 'node:zlib';
import type { PolicyTally, ReportPeriod } from './tally.ts';

export interface ReportInput {
  organizationName: string;
  contactInfo: string;
  reportId: string;
  period: ReportPeriod;
  policyDomain: string;
  policies: PolicyTally[];
}

/** RFC 8460 §4.4 field names, as JSON. */
export function buildTlsReport(r: ReportInput): Record<string, unknown> {
  return {
    'organization-name': r.organizationName,
    'date-range': { 'start-datetime': rfc3339(r.period.start), 'end-datetime': rfc3339(r.period.end) },
    'contact-info': r.contactInfo,
    'report-id': r.reportId,
    policies: r.policies.map((p) => ({
      policy: {
        'policy-type': p.type,
        'policy-string': p.policyString,
        'policy-domain': r.policyDomain,
        ...(p.mxHost.length > 0 ? { 'mx-host': p.mxHost } : {}),
      },
      summary: {
        'total-successful-session-count': p.successes,
        'total-failure-session-count': p.failures.reduce((n, f) => n + f.count, 0),
      },
      'failure-details': p.failures.map((f) => ({
        'result-type': f.resultType,
        ...(f.sendingIp ? { 'sending-mta-ip': f.sendingIp } : {}),
        ...(f.mx ? { 'receiving-mx-hostname': f.mx } : {}),
        ...(f.address ? { 'receiving-ip': f.address } : {}),
        'failed-session-count': f.count,
      })),
    })),
  };
}

/** RFC 3339 in UTC to the second, as the examples of RFC 8460 show it. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** §5.4: the body of the POST (Content-Type application/tlsrpt+gzip). */
export function gzipReport(report: Record<string, unknown>): Buffer {
  return gzipSync(JSON.stringify(report));
}

/** §5.3: submitter!policy-domain!begin!end!unique-id.json.gz, times in seconds since the epoch. */
export function reportFileName(
  submitter: string,
  policyDomain: string,
  period: ReportPeriod,
  uniqueId: string,
): string {
  const begin = Math.floor(period.start / 1000);
  const end = Math.floor(period.end / 1000);
  return `${submitter}!${policyDomain}!${begin}!${end}!${uniqueId}.json.gz`;
}

export interface ReportMailInput {
  from: string;
  to: string[];
  /** The reporting organization's domain (TLS-Report-Submitter). */
  submitter: string;
  policyDomain: string;
  reportId: string;
  period: ReportPeriod;
  /** Unique part of the file name. */
  uniqueId: string;
  gzipped: Buffer;
  date: Date;
  messageId: string;
  boundary: string;
}

/** §5.3: multipart/report; report-type="tlsrpt", the report as application/tlsrpt+gzip. */
export function reportMail(m: ReportMailInput): Buffer {
  const base64 = m.gzipped.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  const lines = [
    `From: ${m.from}`,
    `To: ${m.to.join(', ')}`,
    `Subject: Report Domain: ${m.policyDomain} Submitter: ${m.submitter} Report-ID: <${m.reportId}>`,
    `Date: ${m.date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${m.messageId}>`,
    `TLS-Report-Domain: ${m.policyDomain}`,
    `TLS-Report-Submitter: ${m.submitter}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${m.boundary}"`,
    '',
    `--${m.boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is an aggregate TLS report (RFC 8460) from ${m.submitter} for ${m.policyDomain}, ${rfc3339(m.period.start)} to ${rfc3339(m.period.end)}.`,
    '',
    `--${m.boundary}`,
    'Content-Type: application/tlsrpt+gzip',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${reportFileName(m.submitter, m.policyDomain, m.period, m.uniqueId)}"`,
    '',
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n${base64}--${m.boundary}--\r\n`);
}
