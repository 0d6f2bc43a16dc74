// TLS-RPT (RFC 8460): counts each direct delivery TLS session's result per UTC day, and once
// a day is over sends each domain that publishes `_smtp._tls` its report: gzip JSON POSTed to
// `https:` rua (a failed POST is tried again, retry.ts), a multipart/report message queued through
// this relay's own outbound to `mailto:` rua. With a shared store the counts are the pool's and
// one relay sends them; without one (or for what the store did not take) each relay counts and
// reports its own, kept in a state file on the spool volume across restarts.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../../contract/log.ts';
import { recordDecision, type PendingLookup, type RecordLookup } from './lookup.ts';
import { buildTlsReport, gzipReport, reportMail } from './report.ts';
import {
  aggregate,
  attemptKey,
  attemptOfKey,
  dayOf,
  TlsTally,
  type AttemptCounts,
  type ReportPeriod,
  type TlsAttempt,
} from './tally.ts';
import { nextPostAt, type PendingPost } from './retry.ts';
import type { StateStore } from './state-file.ts';
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
  /** Counts a report sent or failed, by rua scheme (each POST of a retried report counts). */
  sent?(scheme: 'mailto' | 'https', ok: boolean): void;
  /**
   * Counts a domain's report not sent: it publishes no `_smtp._tls` record, or its record could
   * not be looked up for as long as a failed POST is retried.
   */
  dropped?(reason: 'no-record' | 'lookup-failed'): void;
  /** Where the relay's own counts and pending retries are kept; without it, in memory only. */
  store?: StateStore;
  /** How long a change waits to be written with the ones after it. */
  saveDelayMs?: number;
}

/** What one report became: a POST to an https rua or a message queued to the mailto rua. */
export interface SentReport {
  domain: string;
  day: string;
  /** The rua URIs it went to (all the mailto ones in one message). */
  rua: string[];
  ok: boolean;
  detail: string;
}

/** Why POST /api/tlsrpt/send cannot send the day asked for. */
export class SendRefused extends Error {}

export class TlsReporter {
  private readonly deps: TlsReporterDeps;
  private readonly tally = new TlsTally();
  /** Reports whose POST failed and is to be tried again, soonest first not guaranteed. */
  private retries: PendingPost[] = [];
  /** Reports whose `_smtp._tls` lookup failed, with their counts, to be looked up again. */
  private lookups: PendingLookup[] = [];
  /** The run in progress or queued last: runs never overlap. */
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  /** The state file write in progress: writes never overlap (they share the temporary file). */
  private saving: Promise<void> = Promise.resolve();
  /** The pool's counts in the shared store, when there is one. */
  pool: PoolTlsCounts | undefined;
  /** Days this relay added to the pool's counts and has not yet seen reported. */
  private readonly poolDays = new Set<string>();
  /**
   * A worker process other than worker 0 (config `workers`): its sessions are counted by worker 0,
   * so the relay sends one report per domain and day. `at`: when the session was counted.
   */
  forward: ((attempt: TlsAttempt, at: number) => void) | undefined;

  constructor(deps: TlsReporterDeps) {
    this.deps = deps;
  }

  /** Reads the state file: counts from before a restart are reported with the new ones. */
  async load(): Promise<void> {
    const state = await this.deps.store?.load().catch((err: unknown) => {
      this.deps.log('error', 'TLS report state not readable, starting without it', { err: String(err) });
      return undefined;
    });
    if (!state) return;
    this.tally.restore(state.tally);
    this.retries.push(...state.retries);
    this.lookups.push(...state.lookups);
    this.scheduleRetry();
  }

  /** Counts a session; `at`: when it was counted, if not now (one forwarded by another worker). */
  record(attempt: TlsAttempt, at?: number): void {
    if (!this.deps.settings()) return;
    const now = at ?? this.deps.now();
    if (this.forward) return this.forward(attempt, now);
    const pool = this.pool;
    if (!pool) return this.countOwn(attempt, now);
    const day = dayOf(now);
    this.poolDays.add(day);
    pool.add(day, attempt).catch(() => this.countOwn(attempt, now));
  }

  private countOwn(attempt: TlsAttempt, now: number): void {
    this.tally.record(attempt, now);
    this.changed();
  }

  /** Checks every `intervalMs` whether a day is over (hourly: reports leave within the hour). */
  start(intervalMs = 3600_000): void {
    this.timer = setInterval(() => void this.sendFinishedDays(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timers and writes the state file. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.saveTimer);
    await this.queue;
    await this.save();
  }

  /** Sends the reports of every finished day not yet sent and the retries that are due. */
  sendFinishedDays(): Promise<SentReport[]> {
    return this.exclusive(async () => {
      const now = this.deps.now();
      return [
        ...(await this.sendDays(this.finishedDays(now))),
        ...(await this.retry((p) => p.nextAt <= now)),
      ];
    });
  }

  /**
   * POST /api/tlsrpt/send: without a day, every finished day not yet sent and every pending
   * retry, now; with a finished day, that day's; with today, the relay's own counts so far, in a
   * report that ends now (the day's next report starts there).
   */
  sendNow(day?: string): Promise<SentReport[]> {
    return this.exclusive(async () => {
      const now = this.deps.now();
      const today = dayOf(now);
      if (!day) return [...(await this.sendDays(this.finishedDays(now))), ...(await this.retry(() => true))];
      if (day > today) throw new SendRefused(`${day} has not begun (today is ${today} UTC)`);
      if (day < today) return [...(await this.sendDays([day])), ...(await this.retry((p) => p.day === day))];
      if (this.pool)
        throw new SendRefused('with sharedState the pool sends a day once it is over; today cannot be sent');
      const period = this.tally.period(day, now);
      const sent = await this.report(day, period, this.tally.take(day, now));
      this.changed();
      return sent;
    });
  }

  private exclusive<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private finishedDays(now: number): string[] {
    const today = dayOf(now);
    // Yesterday too: a relay restarted since still sends the pool's counts if nobody has.
    const poolDays = this.pool ? [...this.poolDays, dayOf(now - 86400_000)].filter((d) => d < today) : [];
    return [...new Set([...this.tally.finishedDays(now), ...poolDays])].sort();
  }

  private async sendDays(days: string[]): Promise<SentReport[]> {
    const sent: SentReport[] = [];
    for (const day of days) {
      const period = this.tally.period(day, Date.parse(`${day}T23:59:59Z`));
      const counts = this.tally.take(day);
      this.changed();
      const pool = this.pool;
      if (pool) {
        this.poolDays.delete(day);
        // The store not answering: the day is tried again at the next check.
        const claimed = await pool.claim(day, this.deps.instance).catch(() => undefined);
        if (claimed === undefined) this.poolDays.add(day);
        if (claimed) counts.push(...(await pool.read(day).catch(() => [])));
      }
      sent.push(...(await this.report(day, period, counts)));
    }
    return sent;
  }

  /** Sends each domain of the counts its report for the period. */
  private async report(day: string, period: ReportPeriod, counts: AttemptCounts): Promise<SentReport[]> {
    const byDomain = new Map<string, [string, number][]>();
    for (const [attempt, n] of counts) {
      const domain = attempt.domain.toLowerCase();
      let keys = byDomain.get(domain);
      if (!keys) byDomain.set(domain, (keys = []));
      keys.push([attemptKey(attempt), n]);
    }
    const sent: SentReport[] = [];
    const now = this.deps.now();
    for (const [domain, keys] of byDomain)
      sent.push(
        ...(await this.reportDomain({
          domain,
          day,
          start: period.start,
          end: period.end,
          counts: keys,
          attempts: 0,
          firstAt: now,
          nextAt: now,
        })),
      );
    return sent;
  }

  /**
   * Looks up the domain's `_smtp._tls` record and sends it the report; a lookup that failed
   * (not "no record") keeps the counts for another lookup later (lookup.ts).
   */
  private async reportDomain(p: PendingLookup): Promise<SentReport[]> {
    const settings = this.deps.settings();
    if (!settings) return [];
    const { domain, day } = p;
    const lookup = await this.deps.resolveTxt(`_smtp._tls.${domain}`).then(
      (txt): RecordLookup => ({ txt }),
      (err: NodeJS.ErrnoException): RecordLookup => ({ error: err.code ?? String(err) }),
    );
    const attempts = p.attempts + 1;
    const now = this.deps.now();
    const decision = recordDecision(lookup, { attempts, firstAt: p.firstAt }, now);
    if (decision.action === 'drop') {
      this.deps.dropped?.('no-record');
      this.deps.log('info', 'TLS report not sent: the domain publishes no TLSRPT record', { domain, day });
      return [];
    }
    if (decision.action !== 'send') {
      const retryAt = decision.action === 'retry' ? new Date(decision.at).toISOString() : 'never';
      if (decision.action === 'retry') {
        this.lookups.push({ ...p, attempts, nextAt: decision.at });
        this.scheduleRetry();
      } else this.deps.dropped?.('lookup-failed');
      this.changed();
      const detail = `_smtp._tls.${domain} lookup failed (${decision.error}), retry at ${retryAt}`;
      this.deps.log(decision.action === 'retry' ? 'warn' : 'error', 'TLS report not sent', {
        domain,
        day,
        detail,
        attempts,
      });
      return [{ domain, day, rua: [], ok: false, detail }];
    }
    const record = decision.record;
    const policies = aggregate(p.counts.map(([key, n]) => [attemptOfKey(key), n] as const)).get(domain) ?? [];
    const period = { start: p.start, end: p.end };
    const sent: SentReport[] = [];
    const submitter = settings.from.slice(settings.from.lastIndexOf('@') + 1).toLowerCase();
    const uniqueId = randomBytes(8).toString('hex');
    const reportId = `${day}.${domain}.${uniqueId}@${submitter}`;
    const report = buildTlsReport({
      organizationName: settings.organizationName,
      contactInfo: settings.contactInfo,
      reportId,
      period,
      policyDomain: domain,
      policies,
    });
    const gzipped = gzipReport(report);
    for (const url of record.rua.filter((u) => u.toLowerCase().startsWith('https:'))) {
      const now = this.deps.now();
      const pending = {
        url,
        domain,
        day,
        body: gzipped.toString('base64'),
        attempts: 0,
        firstAt: now,
        nextAt: now,
      };
      sent.push(await this.postOnce(pending));
    }
    const mailto = record.rua.filter((u) => u.toLowerCase().startsWith('mailto:')).map((u) => u.slice(7));
    if (mailto.length > 0) {
      const body = reportMail({
        from: settings.from,
        to: mailto,
        submitter,
        policyDomain: domain,
        reportId,
        period,
        uniqueId,
        gzipped,
        date: new Date(this.deps.now()),
        messageId: reportId,
        boundary: `tlsrpt-${uniqueId}`,
      });
      const queued = await this.deps.mail(settings.from, mailto, body).then(
        () => ({ ok: true, detail: 'queued' }),
        (err: unknown) => ({ ok: false, detail: String(err) }),
      );
      this.deps.sent?.('mailto', queued.ok);
      this.deps.log(queued.ok ? 'info' : 'error', queued.ok ? 'TLS report queued' : 'TLS report not queued', {
        domain,
        day,
        to: mailto,
        detail: queued.detail,
      });
      sent.push({ domain, day, rua: mailto.map((a) => `mailto:${a}`), ...queued });
    }
    return sent;
  }

  /** POSTs a report; a failure is kept for a retry unless it has been tried long enough. */
  private async postOnce(p: PendingPost): Promise<SentReport> {
    const r = await this.deps.post(p.url, Buffer.from(p.body, 'base64'));
    const now = this.deps.now();
    const attempts = p.attempts + 1;
    const nextAt = r.ok ? undefined : nextPostAt({ attempts, firstAt: p.firstAt }, now);
    this.deps.sent?.('https', r.ok);
    this.deps.log(r.ok ? 'info' : 'warn', 'TLS report posted', {
      domain: p.domain,
      day: p.day,
      url: p.url,
      ok: r.ok,
      detail: r.detail,
      attempts,
      ...(r.ok ? {} : { retryAt: nextAt === undefined ? 'never' : new Date(nextAt).toISOString() }),
    });
    if (nextAt !== undefined) {
      this.retries.push({ ...p, attempts, nextAt });
      this.scheduleRetry();
    }
    this.changed();
    return { domain: p.domain, day: p.day, rua: [p.url], ok: r.ok, detail: r.detail };
  }

  /** POSTs and record lookups that failed before, tried again. */
  private async retry(which: (p: { day: string; nextAt: number }) => boolean): Promise<SentReport[]> {
    const due = this.retries.filter(which);
    this.retries = this.retries.filter((p) => !which(p));
    const lookups = this.lookups.filter(which);
    this.lookups = this.lookups.filter((p) => !which(p));
    const sent: SentReport[] = [];
    for (const p of due) sent.push(await this.postOnce(p));
    for (const p of lookups) sent.push(...(await this.reportDomain(p)));
    return sent;
  }

  /** Wakes for the soonest retry (the hourly check alone would make the backoff hourly). */
  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    const pending = [...this.retries, ...this.lookups];
    if (pending.length === 0) return;
    const soonest = Math.min(...pending.map((p) => p.nextAt));
    this.retryTimer = setTimeout(
      () => void this.exclusive(() => this.retry((p) => p.nextAt <= this.deps.now())),
      Math.max(0, soonest - this.deps.now()),
    );
    this.retryTimer.unref();
  }

  /** Writes the state file soon, with the changes that follow. */
  private changed(): void {
    if (!this.deps.store || this.saveTimer) return;
    this.saveTimer = setTimeout(() => void this.save(), this.deps.saveDelayMs ?? 5000);
    this.saveTimer.unref();
  }

  private save(): Promise<void> {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const store = this.deps.store;
    if (!store) return Promise.resolve();
    this.saving = this.saving.then(() =>
      store
        .save({ tally: this.tally.snapshot(), retries: [...this.retries], lookups: [...this.lookups] })
        .catch((err: unknown) =>
          this.deps.log('error', 'TLS report state not written', { err: String(err) }),
        ),
    );
    return this.saving;
  }
}
