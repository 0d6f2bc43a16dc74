// TLS-RPT (RFC 8460): counts each direct delivery transaction's TLS result per UTC day, and once
// a day is over sends each domain that publishes `_smtp._tls` its report: gzip JSON POSTed to
// `https:` rua, a multipart/report message queued through this relay's own outbound to `mailto:`
// rua. With a shared store the counts are the pool's and one relay sends them; without one (or
// for what the store did not take) each relay counts and reports its own, in memory.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../../contract/log.ts';
import { parseTlsRptRecord } from './record.ts';
import { buildTlsReport, gzipReport, reportMail } from './report.ts';
import { aggregate, dayOf, TlsTally, type TlsAttempt } from './tally.ts';
import type { PoolTlsCounts } from '../shared-state/tls-reports.ts';

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
  /** This relay among the pool's (who claimed a day). */
  instance: string;
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
  /** The pool's counts in the shared store, when there is one. */
  pool: PoolTlsCounts | undefined;
  /** Days this relay added to the pool's counts and has not yet seen reported. */
  private readonly poolDays = new Set<string>();

  constructor(deps: TlsReporterDeps) {
    this.deps = deps;
  }

  record(attempt: TlsAttempt): void {
    if (!this.deps.settings()) return;
    const now = this.deps.now();
    const pool = this.pool;
    if (!pool) return this.tally.record(attempt, now);
    const day = dayOf(now);
    this.poolDays.add(day);
    pool.add(day, attempt).catch(() => this.tally.record(attempt, now));
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
    const now = this.deps.now();
    const today = dayOf(now);
    // Yesterday too: a relay restarted since still sends the pool's counts if nobody has.
    const poolDays = this.pool ? [...this.poolDays, dayOf(now - 86400_000)].filter((d) => d < today) : [];
    const days = [...new Set([...this.tally.finishedDays(now), ...poolDays])].sort();
    for (const day of days) {
      const counts = this.tally.take(day);
      if (this.pool && poolDays.includes(day)) {
        this.poolDays.delete(day);
        const pool = this.pool;
        // The store not answering: the day is tried again at the next check.
        const claimed = await pool.claim(day, this.deps.instance).catch(() => undefined);
        if (claimed === undefined) this.poolDays.add(day);
        if (claimed) counts.push(...(await pool.read(day).catch(() => [])));
      }
      if (!settings) continue;
      const domains = aggregate(counts);
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
