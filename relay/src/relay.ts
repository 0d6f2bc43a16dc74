// The relay assembled: spool, scheduler, deliverer, intake, admin port, metrics, reload and drain.
// main.ts builds one Relay from a RuntimeConfig; everything stateful is created here, not at import.
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { durationMs } from './config/duration.ts';
import { loadRuntime, type RuntimeConfig } from './config/runtime.ts';
import { referencedFiles } from './config/load.ts';
import { FileWatcher } from './config/watch.ts';
import { Spool } from './spool/store.ts';
import { nodeSpoolFs, type SpoolFs } from './spool/fs-ops.ts';
import { Scheduler, type SchedulerLimits, type ShapingSettings } from './scheduler/scheduler.ts';
import { buildMessage, type QueuedMessage } from './scheduler/model.ts';
import { Deliverer } from './delivery/deliverer.ts';
import { dnsClient } from './delivery/mx.ts';
import { StsPolicies } from './delivery/mta-sts/policies.ts';
import { openStsPolicyFile } from './delivery/mta-sts/store.ts';
import { secureResolver } from './delivery/dane/resolver.ts';
import { TlsReporter } from './tlsrpt/reporter.ts';
import { postReport } from './tlsrpt/post.ts';
import { tlsReportRoutes } from './tlsrpt/routes.ts';
import { stateFile } from './tlsrpt/state-file.ts';
import { DkimKeyring } from './delivery/dkim.ts';
import { loadLinkTracking, type LinkTracking } from './tracking/apply.ts';
import { Intake, type AcceptedMessage, type MessageFacts } from './smtp/server.ts';
import type { SpoolStream } from './spool/stream.ts';
import { protocolKeyword, receivedHeader } from './smtp/received.ts';
import { hasCleanLines } from './security/bare-newline.ts';
import { RelayMetrics, type QueueSnapshot } from './metrics/metrics.ts';
import { relayRoutes, serveAdmin, type AdminDeps, type Route } from './admin/http.ts';
import { workerConfig, type WorkerSlot } from './workers/plan.ts';
import { adoptOrphanOutboxes, adoptOrphanShards } from './workers/adopt.ts';
import { AccountingLog } from './outcomes/accounting.ts';
import { FeedbackRecorder } from './feedback/recorder.ts';
import { ReturnPathListener } from './feedback/listener.ts';
import { recordOutcome } from './outcomes/recorder.ts';
import { sendDsn } from './outcomes/dsn-sender.ts';
import type { DsnSenderDeps } from './outcomes/dsn-sender.ts';
import { queueSnapshot } from './metrics/snapshot.ts';
import { drain, type Drainable } from './drain.ts';
import { AcceptsInFlight, intakeChange, intakeReportedOpen } from './policy/intake-switch.ts';
import { HandoffServer } from './handoff/server.ts';
import { PoolEvacuation } from './handoff/evacuate-to.ts';
import type { QueueHolder } from './handoff/sender.ts';
import { decodeStateLog, type Envelope } from './spool/record.ts';
import { spoolFreeBytes } from './spool/quota.ts';
import { resultsFromReply } from './delivery/results.ts';
import { SuppressionService } from './suppression/service.ts';
import { SharedState } from './shared-state/store.ts';
import { admitRecipient } from './shared-state/submission-limits.ts';
import { EventSink } from './events/sink.ts';
import { feedbackEvent, outcomeEvent, suppressedEvent } from './events/event.ts';
import type { Logger } from '../../contract/log.ts';

export interface RelayOptions {
  configPath: string;
  runtime: RuntimeConfig;
  defaultHostname: string;
  log: Logger;
  /** Injected in tests to simulate write and fsync failures. */
  spoolFs?: SpoolFs;
  /** Config file poll interval. */
  watchIntervalMs?: number;
  /** What POST /drain does; without it, the relay drains and keeps running (main.ts passes its
   * shutdown, the same as SIGTERM's: drain, close, exit). */
  onDrainRequest?: () => void;
  /**
   * One worker process of several (relay/src/workers/): it runs its part of the config (its spool
   * shard, its part of each limit) and serves no management port; the primary process does.
   */
  worker?: WorkerSlot;
}

export class Relay {
  readonly log: Logger;
  /** The config in force; swapped whole by a valid reload. */
  runtime: RuntimeConfig;
  readonly metrics: RelayMetrics;
  readonly spool: Spool;
  readonly scheduler: Scheduler;
  deliverer: Deliverer;
  readonly intake: Intake;
  /** Recipients refused at RCPT (hard bounces, complaints, operators' entries). */
  readonly suppression: SuppressionService;
  /** The pool's Valkey/Redis store (config.sharedState); undefined: per-relay state only. */
  private shared: SharedState | undefined;
  private readonly options: RelayOptions;
  /** This worker's slot; its count follows the primary's reloads (workers/plan.ts `resize`). */
  private workerSlot: WorkerSlot | undefined;
  private accounting: AccountingLog | undefined;
  /** MTA-STS policies of recipient domains, kept across config reloads (max_age can be days). */
  private readonly sts = new StsPolicies();
  /** TLS-RPT tallies of this relay's sessions (delivery.tlsReports), kept across config reloads. */
  readonly tlsReports: TlsReporter;
  /** The resolver of delivery.dns.servers in force (rebuilt with the deliverer on reload). */
  private dns!: ReturnType<typeof dnsClient>;
  private admin: Server | undefined;
  private readonly watcher: FileWatcher;
  /** The DKIM keys in use; a key that fails to load on reload keeps its predecessor. */
  private dkim: DkimKeyring | undefined;
  /** Link tracking in use; a tracking key that fails to load on reload keeps its predecessor. */
  private tracking: LinkTracking | undefined;
  /** Messages past DATA not yet queued: the intake gauge stays 1 until they are (intake-switch.ts). */
  private readonly accepting = new AcceptsInFlight();
  /** True once SIGTERM or POST /drain started the shutdown. */
  private draining = false;
  /** Random id of this process: handoff peers tell themselves apart with it (never hand to self). */
  readonly instance = randomBytes(8).toString('hex');
  /** The internal port where draining peers of the pool hand over their queues. */
  private readonly handoffServer: HandoffServer;
  /** Hands the whole queue to another pool while handoff.evacuateTo says so (pool deletion). */
  private readonly evacuation: PoolEvacuation;
  /** Bounces and complaints at the return-path addresses: counted, logged, handed on (onFeedback). */
  readonly feedback: FeedbackRecorder;
  /** The return-path domains' MX (returnPath.listener); started only when returnPath is configured. */
  private readonly returnPathListener: ReturnPathListener;
  /** The events webhook (config.events at start); undefined: no events are written. */
  readonly events: EventSink | undefined;
  /** Last measured free bytes on the spool filesystem. */
  private freeBytes = Number.MAX_SAFE_INTEGER;
  private diskTimer: NodeJS.Timeout | undefined;
  private drainPromise: Promise<void> | undefined;
  ports: Record<string, number> = {};
  /** The management routes, served on http.port, or by the primary process for a worker. */
  adminRoutes: Route[] = [];

  constructor(options: RelayOptions) {
    this.options = options;
    this.workerSlot = options.worker;
    this.log = options.log;
    this.runtime = this.localized(options.runtime);
    const config = this.runtime.config;
    this.metrics = new RelayMetrics(() => this.snapshot());
    this.metrics.isReady = () => this.notReadyReasons().length === 0;
    this.metrics.intakeOpen = () =>
      intakeReportedOpen({ open: this.runtime.config.intake.open, acceptsInFlight: this.accepting.count });
    this.metrics.setSendingDomains(config.sendingDomains.map((d) => d.domain));
    this.spool = new Spool({
      dir: config.spool.dir,
      fs: options.spoolFs ?? nodeSpoolFs,
      events: {
        quarantined: (queueId, reason) => {
          this.metrics.spoolQuarantined.inc();
          this.log('warn', 'spool file quarantined', { queueId, reason });
        },
      },
    });
    this.deliverer = this.buildDeliverer(this.runtime);
    this.events = config.events ? this.buildEventSink() : undefined;
    this.suppression = new SuppressionService({
      config: () => this.runtime.config.suppression,
      registry: this.metrics.registry,
      domainLabel: (d) => this.metrics.domainLabel(d),
      log: this.log,
      now: Date.now,
    });
    this.tlsReports = new TlsReporter({
      settings: () => this.runtime.config.delivery.tlsReports,
      resolveTxt: (name) => this.dns.resolveTxt(name),
      mail: (from, to, body) => this.queueLocal(from, to, body),
      post: postReport,
      now: Date.now,
      instance: this.instance,
      log: this.log,
      sent: (scheme, ok) => this.metrics.tlsReports.inc({ scheme, result: ok ? 'sent' : 'failed' }),
      dropped: (reason) => this.metrics.tlsReportsDropped.inc({ reason }),
      store: stateFile(spoolFile(this, 'tlsrpt.json')),
    });
    this.scheduler = new Scheduler(
      {
        spool: this.spool,
        deliver: (request) => this.deliverer.deliver(request),
        now: Date.now,
        random: Math.random,
        resolveMx: (domain) => mxNames(domain, this.runtime),
        observer: {
          outcome: (e) => {
            recordOutcome({ metrics: this.metrics, accounting: () => this.accounting }, e);
            void this.events?.record([
              outcomeEvent({
                outcome: e.outcome,
                queueId: e.message.envelope.id,
                sendingDomain: e.message.senderDomain,
                recipient: e.recipient.address,
                reply: e.result?.reply ?? e.recipient.reply ?? '',
                category: e.result?.category ?? '',
                attempts: e.recipient.attempts,
                now: e.now,
              }),
            ]);
            if (e.outcome === 'bounced')
              this.suppression.deliveryBounced({
                recipient: e.recipient.address,
                sender: e.message.envelope.from,
                queueId: e.message.envelope.id,
                category: e.result?.category,
              });
          },
          settled: () => this.events?.settled() ?? Promise.resolve(),
          attempt: (destination, ms) =>
            this.metrics.deliveryDuration.observe(
              { destination: this.metrics.destinationLabel(destination) },
              ms / 1000,
            ),
          failed: (message, recipients) => sendDsn(this.dsnDeps(), message, recipients, 'failed'),
          relayed: (message, recipients) => sendDsn(this.dsnDeps(), message, recipients, 'relayed'),
          delayed: (message, recipients) => sendDsn(this.dsnDeps(), message, recipients, 'delayed'),
          finished: (message, now) =>
            this.metrics.residence.observe(
              { outcome: message.recipients.every((r) => r.status === 'delivered') ? 'delivered' : 'mixed' },
              (now - message.envelope.receivedAt) / 1000,
            ),
          error: (msg, fields) => this.log('error', msg, fields),
          limited: (limit) => this.metrics.rateLimitDeferrals.inc({ rate_limit: limit }),
          backoff: (t) => {
            this.metrics.backoffTransitions.inc({ rate_limit: t.limit, to: t.to });
            this.log('info', 'adaptive backoff', { ...t });
          },
        },
      },
      schedulerLimits(this.runtime),
      shapingSettings(this.runtime),
    );
    this.intake = new Intake({
      runtime: () => this.runtime,
      draining: () => this.draining,
      intakeOpen: () => this.runtime.config.intake.open,
      spoolHasSpace: () => this.freeBytes >= this.runtime.config.spool.minFreeBytes,
      accept: (message) => this.accepting.track(this.accept(message)),
      openStream: (message) => this.openStream(message),
      admitRecipient: (from, to) =>
        admitRecipient(
          this.scheduler.shaper,
          this.shared?.rateLimits,
          { sender: from, senderDomain: domainPart(from), recipientDomain: domainPart(to), mxHosts: [] },
          Date.now,
        ),
      suppressed: (from, to) => this.suppression.rcpt(from, to),
      recordSuppressed: (from, to) =>
        this.events?.record([suppressedEvent(domainPart(from), to, Date.now())]) ?? Promise.resolve(),
      metrics: this.metrics,
      log: this.log,
    });
    this.feedback = new FeedbackRecorder({
      metrics: this.metrics,
      accounting: () => this.accounting,
      log: (level, msg, fields) => this.log(level, msg, fields),
      now: Date.now,
    });
    // Hard bounces and complaints that came back to the return path suppress the recipient.
    this.feedback.onFeedback((f) =>
      this.suppression.onFeedback({
        recipient: f.recipient,
        kind: f.kind === 'complaint' ? 'complaint' : 'hard-bounce',
        sendingDomain: f.sendingDomain,
        messageId: f.queueId,
        source: f.kind === 'complaint' ? 'arf' : 'dsn',
      }),
    );
    // Awaited by the recorder: the report is answered 250 only once its event is on disk.
    this.feedback.onFeedback((f) =>
      this.events?.record([
        feedbackEvent({
          kind: f.kind,
          queueId: f.queueId,
          sendingDomain: f.sendingDomain,
          recipient: f.recipient,
          category: String(f.category),
          reason: f.reason,
          now: Date.now(),
        }),
      ]),
    );
    this.returnPathListener = new ReturnPathListener({
      returnPaths: () => this.runtime.returnPaths,
      hostname: () => this.runtime.config.hostname,
      maxMessageSize: () => this.runtime.config.limits.maxMessageSize,
      tls: () => this.runtime.tls,
      report: async (token, raw) => void (await this.feedback.record(token, raw)),
      refused: (reason) => this.metrics.returnPathRefused.inc({ reason }),
      log: (level, msg, fields) => this.log(level, msg, fields),
    });
    this.handoffServer = new HandoffServer({
      instance: this.instance,
      secret: () => this.runtime.handoffSecret,
      draining: () => this.draining,
      hasSpace: () => this.freeBytes >= this.runtime.config.spool.minFreeBytes,
      holds: (id) => this.scheduler.messages.has(id),
      store: (envelope, body) => this.storeHandedOver(envelope, body),
      counted: (result) => this.metrics.handoffReceived.inc({ result }),
      storeEvents: () => this.events && ((events) => this.events!.outbox.store(events)),
      eventsCounted: (result, n) => this.metrics.handoffEventsReceived.inc({ result }, n),
      log: (level, msg, fields) => this.log(level, msg, fields),
      now: Date.now,
    });
    this.evacuation = new PoolEvacuation({
      ...this.queueHolder(),
      runtime: () => this.runtime,
      draining: () => this.draining,
      scheduler: this.scheduler,
    });
    this.watcher = new FileWatcher(() => void this.reload(), options.watchIntervalMs ?? 1000);
  }

  async start(): Promise<void> {
    await this.spool.open();
    this.accounting = new AccountingLog(this.runtime.config.accounting.file, (err) =>
      this.log('error', 'accounting log', { err: err.message }),
    );
    await this.checkDisk();
    this.diskTimer = setInterval(() => void this.checkDisk(), 1000);
    this.diskTimer.unref();
    // Before the recovered messages are queued: their outcomes are written to the outbox.
    await this.events?.start();
    const recovered = await this.spool.recover();
    const now = Date.now();
    for (const r of recovered)
      this.scheduler.add(buildMessage(r.envelope, r.states, this.destinationOf(), now));
    this.log('info', 'spool recovered', { messages: recovered.length });
    // Shards left by a larger worker count are worker 0's (relay/src/workers/adopt.ts).
    if (!this.workerSlot?.index) await this.adoptShards(this.workerSlot?.count ?? 1);
    await this.suppression.open();
    this.shared = startSharedState(this);
    await this.shared?.start();
    this.scheduler.poolLimiter = this.shared?.rateLimits;
    this.scheduler.connectionLeases = this.shared?.connectionLeases;
    this.tlsReports.pool = this.shared?.tlsCounts;
    this.sts.store =
      this.shared?.stsPolicies ?? (await openStsPolicyFile(spoolFile(this, 'mta-sts.json'), this.log));
    await this.tlsReports.load();
    this.scheduler.start();
    this.tlsReports.start();
    this.ports = await this.intake.listen();
    const handoff = this.runtime.config.handoff;
    if (handoff) this.ports.handoff = await this.handoffServer.listen(handoff.host, handoff.port);
    const returnPath = this.runtime.config.returnPath?.listener;
    if (returnPath?.enabled)
      this.ports.returnPath = await this.returnPathListener.listen(returnPath.host, returnPath.port);
    this.adminRoutes = relayRoutes(this.adminDeps());
    await this.watcher.watch([this.options.configPath, ...referencedFiles(this.runtime.config)]);
    this.evacuation.follow();
    if (this.options.worker) {
      this.log('info', 'relay worker started', { ports: this.ports });
      return;
    }
    const http = this.runtime.config.http;
    this.admin = serveAdmin(this.adminRoutes, this.adminDeps());
    await new Promise<void>((resolve) => this.admin!.listen(http.port, http.host, resolve));
    const address = this.admin.address();
    this.ports.http = typeof address === 'object' && address ? address.port : http.port;
    this.log('info', 'relay started', { ports: this.ports });
  }

  /**
   * Takes the messages of spool shards `from` and above (worker 0, or the single process), and the
   * unsent events of their outboxes.
   */
  async adoptShards(from: number): Promise<number> {
    const adopted = await adoptOrphanShards({
      spoolDir: this.runtime.config.spool.dir,
      count: from,
      fs: this.options.spoolFs ?? nodeSpoolFs,
      holds: (id) => this.scheduler.messages.has(id),
      store: (envelope, body) => this.storeHandedOver(envelope, body),
      log: this.log,
    });
    const events = this.events;
    if (events)
      await adoptOrphanOutboxes({
        eventsDir: this.runtime.config.events!.dir,
        count: from,
        store: (batch) => events.outbox.store(batch),
        log: this.log,
      });
    return adopted;
  }

  /** The primary changed the worker count: this worker's share of the limits follows. */
  async setWorkerCount(count: number): Promise<void> {
    if (!this.workerSlot || this.workerSlot.count === count) return;
    this.workerSlot = { index: this.workerSlot.index, count };
    await this.reload();
  }

  /** The config this process runs: a worker's part of it, or all of it. */
  private localized(runtime: RuntimeConfig): RuntimeConfig {
    const slot = this.workerSlot;
    return slot ? { ...runtime, config: workerConfig(runtime.config, slot) } : runtime;
  }

  private adminDeps(): AdminDeps {
    return {
      registry: this.metrics.registry,
      notReadyReasons: () => this.notReadyReasons(),
      messages: () => this.scheduler.messages.values(),
      message: (id) => this.scheduler.messages.get(id),
      retryNow: (id) => this.scheduler.retryNow(id),
      whyWaiting: (job) => this.scheduler.whyWaiting(job),
      limitDestinations: () => this.scheduler.shaper.states(),
      delete: (id) => this.scheduler.delete(id),
      drain: this.options.onDrainRequest ?? (() => void this.drain()),
      now: Date.now,
      tokens: () => this.runtime.adminTokens,
      authThrottle: () => ({
        burst: this.runtime.config.http.authThrottle.burst,
        refillMs: durationMs(this.runtime.config.http.authThrottle.refill),
      }),
      refused: (reason) => this.metrics.httpRefusals.inc({ reason }),
      audit: (entry) => {
        this.metrics.adminActions.inc({ action: entry.action, role: entry.role });
        this.log('info', 'admin action', { ...entry });
      },
      routes: [
        ...this.suppression.routes(),
        ...tlsReportRoutes({
          configured: () => this.runtime.config.delivery.tlsReports !== undefined,
          sendNow: (day) => this.tlsReports.sendNow(day),
        }),
      ],
    };
  }

  /** Spool, then queue: the 250 is sent only after this resolves. */
  private async accept(m: AcceptedMessage): Promise<string> {
    const now = Date.now();
    const fields = {
      from: m.from,
      recipients: m.recipients,
      receivedAt: now,
      client: m.client,
      ...(m.dsn ? { dsn: m.dsn } : {}),
    };
    let envelope: Envelope;
    if (m.streamed) {
      // Its Received header went first (openStream) and was checked clean there.
      envelope = await this.spool.commitStream(m.streamed, fields, { cleanLines: m.cleanLines });
    } else {
      const id = this.spool.newId(now);
      const header = this.receivedFor(m, id, now);
      // The Received header and the chunks as they arrived, copied once into the spool record.
      envelope = await this.spool.write({ id, ...fields }, [header, ...m.body], {
        cleanLines: m.cleanLines && hasCleanLines(header),
      });
    }
    this.metrics.received.inc({ sending_domain: this.metrics.domainLabel(domainPart(m.from)) });
    this.scheduler.add(buildMessage(envelope, new Map(), this.destinationOf(), now));
    return envelope.id;
  }

  /**
   * A big message's spool stream, its Received header written first (stamped when the stream
   * opens); undefined (gathered in memory instead) when the header would not pass the bare-CR/LF
   * scan or the file cannot be created.
   */
  private openStream(m: MessageFacts): SpoolStream | undefined {
    const now = Date.now();
    const id = this.spool.newId(now);
    const header = this.receivedFor(m, id, now);
    if (!hasCleanLines(header)) return undefined;
    try {
      const stream = this.spool.openStream(id);
      stream.push(header);
      return stream;
    } catch {
      return undefined;
    }
  }

  private receivedFor(m: MessageFacts, id: string, now: number): Buffer {
    return Buffer.from(
      receivedHeader({
        helo: m.client.helo,
        clientAddress: m.client.address,
        byHost: this.runtime.config.hostname,
        protocol: protocolKeyword(m.secure, m.client.user !== undefined),
        queueId: id,
        recipients: m.recipients,
        date: new Date(now),
        tls: m.tls,
      }),
    );
  }

  /** A message this relay writes itself (a TLS report), stored and queued like an accepted one. */
  private async queueLocal(from: string, recipients: string[], body: Buffer): Promise<void> {
    const now = Date.now();
    const envelope = await this.spool.write(
      {
        id: this.spool.newId(now),
        from,
        recipients,
        receivedAt: now,
        client: { address: '127.0.0.1', helo: this.runtime.config.hostname },
      },
      body,
    );
    this.scheduler.add(buildMessage(envelope, new Map(), this.destinationOf(), now));
  }

  /**
   * A message handed over by a draining peer: stored as it was there (id, arrival time, recipient
   * states, attempts), fsynced by the group commit before the peer is told, then queued.
   */
  private async storeHandedOver(envelope: Envelope, body: Buffer): Promise<void> {
    const { bodyLength: _length, bodyCrc32: _crc, ...rest } = envelope;
    const stored = await this.spool.write(rest, body);
    this.scheduler.add(buildMessage(stored, decodeStateLog('', stored), this.destinationOf(), Date.now()));
  }

  /** A peer acknowledged the message (fsynced there): its pending recipients are handed off. */
  private async handedOff(
    message: QueuedMessage,
    peer: string,
    result: 'stored' | 'duplicate',
  ): Promise<void> {
    const pending = message.recipients
      .filter((r) => r.status === undefined || r.status === 'deferred')
      .map((r) => r.address);
    const reply = result === 'stored' ? `250 handed off to ${peer}` : `250 already held by ${peer}`;
    await this.scheduler.markHandedOff(message, resultsFromReply(pending, reply), peer);
    this.metrics.handoffSent.inc({ result });
  }

  /** What a DSN needs: the config in force, the spool it is stored in, the queue it joins. */
  private dsnDeps(): DsnSenderDeps {
    return {
      config: () => this.runtime.config,
      spool: this.spool,
      enqueue: (envelope, now) =>
        this.scheduler.add(buildMessage(envelope, new Map(), this.destinationOf(), now)),
      sent: () => this.metrics.dsnSent.inc(),
      log: this.log,
    };
  }

  private destinationOf(): (domain: string) => string {
    const d = this.runtime.config.delivery;
    return d.mode === 'smarthost' && d.smarthost
      ? () => `smarthost:${d.smarthost!.host}:${d.smarthost!.port}`
      : (x) => x;
  }

  private buildDeliverer(runtime: RuntimeConfig): Deliverer {
    const d = runtime.config.delivery;
    this.dns = dnsClient(d.dns.servers, Math.min(durationMs(d.connectTimeout), 5000));
    const settings: ConstructorParameters<typeof Deliverer>[0] = { delivery: d, dns: this.dns };
    if (runtime.credentials) settings.credentials = runtime.credentials;
    settings.sts = this.sts;
    const daneResolver = d.tlsPolicy?.daneResolver;
    if (daneResolver)
      settings.dane = secureResolver(daneResolver, Math.min(durationMs(d.connectTimeout), 5000));
    settings.onTlsAttempt = (attempt) => this.tlsReports.record(attempt);
    settings.onTlsReport = (domain, failure, detail) => {
      this.metrics.outboundTlsProblems.inc({ failure });
      this.log('warn', 'outbound TLS policy problem', { domain, failure, detail });
    };
    if (runtime.returnPaths) settings.returnPaths = runtime.returnPaths;
    // DKIM keys are read here, so a rotated key file (which triggers a reload) signs the next attempt.
    const { keyring, errors } = DkimKeyring.load(runtime.config.sendingDomains, this.dkim);
    for (const e of errors)
      this.log('error', 'DKIM key not usable, keeping the previous one if any', { ...e });
    this.dkim = keyring;
    settings.dkim = keyring;
    settings.onDkim = (domain) =>
      this.metrics.dkimSigned.inc({
        sending_domain: this.metrics.domainLabel(domain ?? ''),
        result: domain ? 'signed' : 'no_key',
      });
    const tracking = loadLinkTracking(runtime.config, this.tracking);
    if (tracking.error) this.log('error', 'tracking key not usable', { error: tracking.error });
    this.tracking = tracking.tracking;
    if (tracking.tracking) {
      settings.tracking = tracking.tracking;
      settings.onTracking = (outcome) => this.metrics.recordTracking(outcome);
    }
    return new Deliverer(settings);
  }

  /** The events sink of config.events; its URL, secret, types and batching follow reloads. */
  private buildEventSink(): EventSink {
    const started = this.runtime.config.events!;
    return new EventSink({
      config: () => this.runtime.config.events ?? started,
      secret: () => this.runtime.eventsSecret,
      registry: this.metrics.registry,
      prefix: 'mailfleet_relay_',
      log: (level, msg, fields) => this.log(level, msg, fields),
    });
  }

  /** Re-reads config and referenced files; applies a valid one, keeps the old one otherwise. */
  async reload(): Promise<boolean> {
    const loaded = await loadRuntime(this.options.configPath, {
      defaultHostname: this.options.defaultHostname,
    });
    if (!loaded.ok) {
      this.metrics.configReloads.inc({ result: 'failure' });
      this.log('error', 'config reload rejected, keeping the running config', { errors: loaded.errors });
      return false;
    }
    const before = this.runtime.config;
    const next = this.localized(loaded.runtime);
    this.runtime = next;
    this.metrics.setSendingDomains(next.config.sendingDomains.map((d) => d.domain));
    this.scheduler.limits = schedulerLimits(next);
    this.scheduler.configureShaping(shapingSettings(next));
    const old = this.deliverer;
    this.deliverer = this.buildDeliverer(next);
    old.retire();
    this.intake.updateTls();
    if (next.config.accounting.file !== before.accounting.file) {
      const previous = this.accounting;
      this.accounting = new AccountingLog(next.config.accounting.file, (err) =>
        this.log('error', 'accounting log', { err: err.message }),
      );
      void previous?.close();
    }
    const restartNeeded =
      // http.tokens and http.authThrottle apply at once; only the address needs a restart.
      JSON.stringify([
        before.listeners,
        before.http.host,
        before.http.port,
        before.spool.dir,
        before.returnPath?.listener,
        before.events === undefined,
        before.events?.dir,
        before.events?.maxBytes,
      ]) !==
      JSON.stringify([
        next.config.listeners,
        next.config.http.host,
        next.config.http.port,
        next.config.spool.dir,
        next.config.returnPath?.listener,
        next.config.events === undefined,
        next.config.events?.dir,
        next.config.events?.maxBytes,
      ]);
    if (restartNeeded)
      this.log(
        'warn',
        'listener, http.host/port, spool.dir or events (on/off, dir, maxBytes) changes take effect at the next start',
        {},
      );
    await this.watcher.watch([this.options.configPath, ...referencedFiles(next.config)]);
    this.metrics.configReloads.inc({ result: 'success' });
    this.log('info', 'config reloaded', {});
    const intake = intakeChange(before.intake.open, next.config.intake.open);
    if (intake) this.log('info', intake, { acceptsInFlight: this.accepting.count });
    this.scheduler.resume();
    this.evacuation.follow();
    return true;
  }

  /** Drains once (SIGTERM, POST /drain); later calls get the same drain. */
  drain(): Promise<void> {
    this.drainPromise ??= drain(this.drainable());
    return this.drainPromise;
  }

  private drainable(): Drainable {
    return {
      ...this.queueHolder(),
      runtime: this.runtime,
      startDraining: () => {
        this.draining = true;
      },
      quiesce: () => this.evacuation.stop(),
      scheduler: this.scheduler,
      intake: this.intake,
      stopEvents: async () => {
        await this.events?.close();
        return this.events?.outbox;
      },
      eventsHandedOff: (n) => this.metrics.handoffEventsSent.inc(n),
    };
  }

  /** What a handoff (drain or evacuation) may touch of this relay. */
  private queueHolder(): QueueHolder {
    return {
      instance: this.instance,
      scheduler: this.scheduler,
      spool: this.spool,
      log: this.log,
      handedOff: (message, peer, result) => this.handedOff(message, peer, result),
    };
  }

  async close(): Promise<void> {
    this.watcher.close();
    await this.tlsReports.stop();
    if (this.diskTimer) clearInterval(this.diskTimer);
    await this.evacuation.stop();
    this.scheduler.stop();
    await this.scheduler.idle();
    this.deliverer.close();
    await this.intake.close(1000);
    await this.handoffServer.close();
    await this.returnPathListener.close();
    await new Promise<void>((resolve) => (this.admin ? this.admin.close(() => resolve()) : resolve()));
    this.admin?.closeAllConnections();
    await this.accounting?.close();
    await this.shared?.close();
    await this.suppression.close();
    await this.events?.close();
    await this.spool.close();
  }

  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.draining) reasons.push('draining');
    if (this.freeBytes < this.runtime.config.spool.minFreeBytes)
      reasons.push('spool disk below spool.minFreeBytes');
    return reasons;
  }

  private async checkDisk(): Promise<void> {
    try {
      this.freeBytes = spoolFreeBytes({
        filesystemFree: await this.spool.freeBytes(),
        spoolBytes: this.spool.bytes,
        maxBytes: this.runtime.config.spool.maxBytes,
      });
      this.metrics.spoolFreeBytes.set(this.freeBytes);
    } catch (err) {
      this.log('warn', 'statfs failed', { err: String(err) });
    }
  }

  private snapshot(): QueueSnapshot {
    return queueSnapshot({
      messages: this.scheduler.messages.values(),
      sendingDomains: this.runtime.config.sendingDomains.map((x) => x.domain),
      domainLabel: (domain) => this.metrics.domainLabel(domain),
      spoolBytes: this.spool.bytes,
      shaping: { destinations: this.scheduler.shaper.states(), ...this.scheduler.destinationStates() },
    });
  }
}

/** The shared store when configured, wired to carry the suppression list's local changes. */
function startSharedState(relay: Relay): SharedState | undefined {
  const config = relay.runtime.config;
  if (!config.sharedState) return undefined;
  const shared = new SharedState({
    config: config.sharedState,
    password: relay.runtime.sharedStatePassword,
    instance: relay.instance,
    list: relay.suppression.list,
    outboxFile: `${config.suppression.file}.outbox`,
    registry: relay.metrics.registry,
    log: relay.log,
  });
  relay.suppression.list.changed = (changes) =>
    void shared.suppression.publish(changes).catch(() => undefined);
  return shared;
}

/** A file of the relay's own beside the spool (MTA-STS policies, TLS-RPT counts). */
function spoolFile(relay: Relay, name: string): string {
  return `${relay.runtime.config.spool.dir.replace(/\/$/, '')}/${name}`;
}

function schedulerLimits(runtime: RuntimeConfig): SchedulerLimits {
  const c = runtime.config;
  return {
    maxConnections: c.delivery.maxConnections,
    maxConnectionsPerDestination: c.delivery.maxConnectionsPerDestination,
    retry: {
      firstRetryMs: durationMs(c.retry.firstRetry),
      maxBackoffMs: durationMs(c.retry.maxBackoff),
      maxQueueLifetimeMs: durationMs(c.retry.maxQueueLifetime),
      delayWarningAfterMs: durationMs(c.retry.delayWarningAfter),
    },
  };
}

function shapingSettings(runtime: RuntimeConfig): ShapingSettings {
  const c = runtime.config;
  return {
    rateLimits: c.rateLimits,
    adaptiveBackoff: c.adaptiveBackoff,
    suspendedDomains: c.sendingDomains.filter((d) => d.suspended).map((d) => d.domain),
  };
}

/** MX host names for MX-rollup limits, through the configured resolvers. */
async function mxNames(domain: string, runtime: RuntimeConfig): Promise<string[]> {
  const d = runtime.config.delivery;
  const records = await dnsClient(d.dns.servers, Math.min(durationMs(d.connectTimeout), 5000)).resolveMx(
    domain,
  );
  return records.map((r) => r.exchange);
}

function domainPart(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}
