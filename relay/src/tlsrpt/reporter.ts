// TLS-RPT (RFC 8460): tallies each direct delivery session's TLS result per policy domain and
// UTC day, and once a day is over sends each domain that publishes `_smtp._tls` its report:
// gzip JSON POSTed to `https:` rua, a multipart/report message queued through this relay's own
// outbound to `mailto:` rua. Per relay, in memory: a restart loses the day so far.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.ts';
import { parseTlsRptRecord } from './record.ts';
import { buildTlsReport, gzipReport, reportMail } from './report.ts';
import { TlsTally, type TlsAttempt } from './tally.ts';

export interface TlsReportSettings {
  organizationName: string;
  /** The From address of mailed reports; its domain is the submitter. */
  from: string;
  contactInfo: string;
}

export interface TlsReporterDeps {
  /** The settings in force; undefined: reports are off (nothing is tallied). */
  settings(): TlsReportSettings | undefined;
  resolveTxt(name: string): Promise<string[][]>;
  /** Queues a message for delivery through this relay. */
  mail(from: string, to: string[], body: Buffer): Promise<void>;
  post(url: string, body: Buffer): Promise<{ ok: boolean; detail: string }>;
  now(): number;
  log: Logger;
  /** Counts a report sent or failed, by rua scheme. */
  sent?(scheme: 'mailto' | 'https', ok: boolean): void;
}

export class TlsReporter {
  private readonly deps: TlsReporterDeps;
  private readonly tally = new TlsTally();
  /** The run in progress, so a timer tick never overlaps it. */
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(deps: TlsReporterDeps) {
    this.deps = deps;
  }

  record(attempt: TlsAttempt): void {
    if (this.deps.settings()) this.tally.record(attempt, this.deps.now());
  }

  /** Checks every `intervalMs` whether a day is over (hourly: reports leave within the hour). */
  start(intervalMs = 3600_000): void {
    this.timer = setInterval(() => void this.sendFinishedDays(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Sends the reports of every finished day not yet sent; resolves when they are sent or failed. */
  sendFinishedDays(): Promise<void> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<void> {
    const settings = this.deps.settings();
    for (const day of this.tally.finishedDays(this.deps.now())) {
      const domains = this.tally.take(day);
      if (!settings) continue;
      for (const [domain, policies] of domains) {
        const txt = await this.deps.resolveTxt(`_smtp._tls.${domain}`).catch(() => [] as string[][]);
        const record = parseTlsRptRecord(txt);
        if (!record) continue;
        const submitter = settings.from.slice(settings.from.lastIndexOf('@') + 1).toLowerCase();
        const uniqueId = randomBytes(8).toString('hex');
        const reportId = `${day}.${domain}.${uniqueId}@${submitter}`;
        const report = buildTlsReport({
          organizationName: settings.organizationName,
          contactInfo: settings.contactInfo,
          reportId,
          day,
          policyDomain: domain,
          policies,
        });
        const gzipped = gzipReport(report);
        const mailto = record.rua.filter((u) => u.toLowerCase().startsWith('mailto:')).map((u) => u.slice(7));
        for (const url of record.rua.filter((u) => u.toLowerCase().startsWith('https:'))) {
          const r = await this.deps.post(url, gzipped);
          this.deps.sent?.('https', r.ok);
          this.deps.log(r.ok ? 'info' : 'warn', 'TLS report posted', {
            domain,
            day,
            url,
            ok: r.ok,
            detail: r.detail,
          });
        }
        if (mailto.length > 0) {
          const body = reportMail({
            from: settings.from,
            to: mailto,
            submitter,
            policyDomain: domain,
            reportId,
            day,
            uniqueId,
            gzipped,
            date: new Date(this.deps.now()),
            messageId: reportId,
            boundary: `tlsrpt-${uniqueId}`,
          });
          const ok = await this.deps.mail(settings.from, mailto, body).then(
            () => true,
            (err: unknown) => {
              this.deps.log('error', 'TLS report not queued', { domain, day, err: String(err) });
              return false;
            },
          );
          this.deps.sent?.('mailto', ok);
          if (ok) this.deps.log('info', 'TLS report queued', { domain, day, to: mailto });
        }
      }
    }
  }
}
