// The relay's Prometheus metrics. Built by main into a registry it owns (nothing registers at
// import). Label values are bounded: sending domains only as configured (else "other"), recipient
// destinations only as the first TOP_DESTINATIONS seen (else "other"), reply codes as 3 digits.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BounceWindow } from './bounce-window.ts';
import type { LimitDestinationState } from '../shaping/shaper.ts';
import type { TrackingOutcome } from '../tracking/apply.ts';

const TOP_DESTINATIONS = 20;
/** Limit destinations exported with their own series (rate and backoff gauges). */
const TOP_LIMIT_DESTINATIONS = 100;

export interface QueueSnapshot {
  /** [state, sendingDomain label] -> messages */
  jobsByState: Map<string, number>;
  oldestReceivedAt: number | undefined;
  spoolBytes: number;
  /** Traffic shaping: every limit destination, and how many are held back or backed off now. */
  shaping?: { destinations: LimitDestinationState[]; rateLimited: number; backedOff: number };
}

export class RelayMetrics {
  readonly registry: Registry;
  /** Configured sending domains; replaced on reload. */
  private sendingDomains = new Set<string>();
  /** Destinations that have their own label value. */
  private readonly destinations = new Set<string>();
  readonly bounceWindow = new BounceWindow(60 * 60 * 1000, 60);

  readonly received: Counter<'sending_domain'>;
  readonly delivered: Counter<'sending_domain' | 'destination'>;
  readonly deferred: Counter<'sending_domain'>;
  readonly bounced: Counter<'sending_domain' | 'category'>;
  readonly expired: Counter<'sending_domain'>;
  readonly handedOff: Counter<'sending_domain'>;
  readonly dsnSent: Counter;
  /** Bounces and complaints received at the return-path listener (feedback/recorder.ts). */
  readonly feedbackReports: Counter<'sending_domain' | 'kind' | 'category'>;
  readonly returnPathRefused: Counter<'reason'>;
  /** Messages this relay handed to peers (acknowledged after the peer's fsync), by peer reply. */
  readonly handoffSent: Counter<'result'>;
  /** Messages received from draining peers, by what was done with them. */
  readonly handoffReceived: Counter<'result'>;
  /** Unsent webhook events handed to a peer's outbox (handoff/events.ts). */
  readonly handoffEventsSent: Counter;
  /** Webhook events received from peers into this relay's outbox, by result (stored, refused). */
  readonly handoffEventsReceived: Counter<'result'>;
  readonly deliveryDuration: Histogram<'destination'>;
  readonly residence: Histogram<'outcome'>;
  readonly sessions: Counter<'listener' | 'tls'>;
  readonly authFailures: Counter<'listener'>;
  readonly authLockouts: Counter;
  readonly httpRefusals: Counter<'reason'>;
  readonly adminActions: Counter<'action' | 'role'>;
  readonly dkimSigned: Counter<'sending_domain' | 'result'>;
  readonly trackingMessages: Counter<'sending_domain' | 'result'>;
  readonly trackingLinks: Counter<'sending_domain'>;
  /** Recipient outcomes of delivery attempts by the TLS policy that applied and its result. */
  readonly outboundTls: Counter<'destination' | 'policy' | 'result'>;
  /** TLS problems that did not stop the mail (MTA-STS testing mode, policy fetch failures). */
  readonly outboundTlsProblems: Counter<'failure'>;
  /** TLS-RPT reports sent or failed, by rua scheme. */
  readonly tlsReports: Counter<'scheme' | 'result'>;
  readonly tlsReportsDropped: Counter<'reason'>;
  /** Whether /readyz passes; set by the relay (a gauge read at scrape time). */
  isReady: () => boolean = () => true;
  /** Whether the relay may still acknowledge new mail (policy/intake-switch.ts intakeReportedOpen). */
  intakeOpen: () => boolean = () => true;
  readonly sessionsActive: Gauge<'listener'>;
  readonly rejections: Counter<'code' | 'reason'>;
  readonly spoolFreeBytes: Gauge;
  readonly spoolQuarantined: Counter;
  readonly spoolWriteFailures: Counter;
  readonly configReloads: Counter<'result'>;
  readonly acceptLatency: Histogram;
  readonly rateLimitDeferrals: Counter<'rate_limit'>;
  readonly backoffTransitions: Counter<'rate_limit' | 'to'>;

  constructor(snapshot: () => QueueSnapshot) {
    const registry = new Registry();
    this.registry = registry;
    collectDefaultMetrics({ register: registry, prefix: 'mailfleet_relay_' });
    const p = 'mailfleet_relay_';
    const r = [registry];
    this.received = new Counter({
      name: `${p}messages_received_total`,
      help: 'Messages accepted (250 to DATA), by sending domain.',
      labelNames: ['sending_domain'],
      registers: r,
    });
    this.delivered = new Counter({
      name: `${p}recipients_delivered_total`,
      help: 'Recipients delivered (2xx), by sending domain and destination.',
      labelNames: ['sending_domain', 'destination'],
      registers: r,
    });
    this.deferred = new Counter({
      name: `${p}recipients_deferred_total`,
      help: 'Delivery attempts deferred (4xx, connection or timeout), per recipient.',
      labelNames: ['sending_domain'],
      registers: r,
    });
    this.bounced = new Counter({
      name: `${p}recipients_bounced_total`,
      help: 'Recipients bounced (5xx), by sending domain and category.',
      labelNames: ['sending_domain', 'category'],
      registers: r,
    });
    this.expired = new Counter({
      name: `${p}recipients_expired_total`,
      help: 'Recipients that outlived retry.maxQueueLifetime.',
      labelNames: ['sending_domain'],
      registers: r,
    });
    this.handedOff = new Counter({
      name: `${p}recipients_handed_off_total`,
      help: 'Recipients handed to peer relays of the pool on drain.',
      labelNames: ['sending_domain'],
      registers: r,
    });
    this.handoffSent = new Counter({
      name: `${p}handoff_sent_messages_total`,
      help: 'Messages handed to peer relays on drain, acknowledged after the peer fsynced them (result: stored, duplicate).',
      labelNames: ['result'],
      registers: r,
    });
    this.handoffReceived = new Counter({
      name: `${p}handoff_received_messages_total`,
      help: 'Messages received from draining peers (result: stored, duplicate = already held, refused).',
      labelNames: ['result'],
      registers: r,
    });
    this.handoffEventsSent = new Counter({
      name: `${p}handoff_sent_events_total`,
      help: 'Unsent webhook events handed to a peer relay at drain, acknowledged after the peer fsynced them into its outbox.',
      registers: r,
    });
    this.handoffEventsReceived = new Counter({
      name: `${p}handoff_received_events_total`,
      help: 'Webhook events received from draining peers into this outbox (result: stored, refused).',
      labelNames: ['result'],
      registers: r,
    });
    this.feedbackReports = new Counter({
      name: `${p}feedback_reports_total`,
      help: 'Reports received at the return-path listener about mail this pool sent, by sending domain, kind (hard-bounce, soft-bounce, delayed, complaint, not-spam, unrecognised) and category (bounce category or ARF feedback type). Async hard bounces and complaints feed the bounce-rate autopilot.',
      labelNames: ['sending_domain', 'kind', 'category'],
      registers: r,
    });
    this.returnPathRefused = new Counter({
      name: `${p}return_path_refused_total`,
      help: 'Mail refused by the return-path listener, by reason (not-verp, unknown-domain, bad-signature, too-big, not-recorded).',
      labelNames: ['reason'],
      registers: r,
    });
    this.dsnSent = new Counter({
      name: `${p}dsn_generated_total`,
      help: 'Delivery status notifications queued to envelope senders.',
      registers: r,
    });
    this.deliveryDuration = new Histogram({
      name: `${p}delivery_duration_seconds`,
      help: 'Duration of one outbound delivery attempt.',
      labelNames: ['destination'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: r,
    });
    this.residence = new Histogram({
      name: `${p}queue_residence_seconds`,
      help: 'Time from acceptance to the last recipient being final.',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 21600, 86400, 432000],
      registers: r,
    });
    // Counted when the session ends, so a STARTTLS session counts as tls="true".
    this.sessions = new Counter({
      name: `${p}smtp_sessions_total`,
      help: 'Inbound SMTP sessions, counted when they end, by listener and whether TLS was in use.',
      labelNames: ['listener', 'tls'],
      registers: r,
    });
    this.authFailures = new Counter({
      name: `${p}auth_failures_total`,
      help: 'Failed AUTH attempts (wrong credentials, or refused while locked out), by listener.',
      labelNames: ['listener'],
      registers: r,
    });
    this.authLockouts = new Counter({
      name: `${p}auth_lockouts_total`,
      help: 'Client IPs or usernames locked out after too many AUTH failures.',
      registers: r,
    });
    ({ httpRefusals: this.httpRefusals, adminActions: this.adminActions } = adminCounters(registry));
    this.outboundTls = new Counter({
      name: `${p}outbound_tls_recipients_total`,
      help: 'Recipients of delivery attempts by destination, the TLS policy that applied (opportunistic, encrypt, verify, dane, mta-sts, mta-sts-testing, smarthost) and its result (success or the RFC 8460 failure type).',
      labelNames: ['destination', 'policy', 'result'],
      registers: r,
    });
    this.outboundTlsProblems = new Counter({
      name: `${p}outbound_tls_problems_total`,
      help: 'TLS policy problems that did not stop the mail (MTA-STS testing mode, an MTA-STS policy that could not be fetched, an MX host skipped because its DANE lookups failed), by RFC 8460 failure type.',
      labelNames: ['failure'],
      registers: r,
    });
    this.tlsReports = new Counter({
      name: `${p}tls_reports_total`,
      help: 'TLS-RPT (RFC 8460) reports by rua scheme (https, mailto) and result (sent: POSTed with a 2xx answer or queued for delivery; failed), each POST of a retried report counted.',
      labelNames: ['scheme', 'result'],
      registers: r,
    });
    this.tlsReportsDropped = new Counter({
      name: `${p}tls_reports_dropped_total`,
      help: 'TLS-RPT (RFC 8460) reports of a domain and day not sent, by reason: no-record (the domain publishes no _smtp._tls record) or lookup-failed (its record could not be looked up for a day of retries).',
      labelNames: ['reason'],
      registers: r,
    });
    this.dkimSigned = new Counter({
      name: `${p}dkim_signatures_total`,
      help: 'Outbound messages DKIM-signed (result="signed") or not signed for want of a usable key (result="no_key").',
      labelNames: ['sending_domain', 'result'],
      registers: r,
    });
    this.trackingMessages = new Counter({
      name: `${p}tracking_messages_total`,
      help: 'Messages of tracking domains by what link tracking did: rewritten, signed_by_sender (already DKIM-signed for the domain, left alone), too_large, no_html.',
      labelNames: ['sending_domain', 'result'],
      registers: r,
    });
    this.trackingLinks = new Counter({
      name: `${p}tracking_links_total`,
      help: 'Links rewritten into tracked links.',
      labelNames: ['sending_domain'],
      registers: r,
    });
    const isReady = () => this.isReady();
    const ready = new Gauge({
      name: `${p}ready`,
      help: '1 when the relay is ready (/readyz passes), 0 while draining or short of spool disk.',
      registers: r,
      // Worker processes (relay/src/workers/): the relay is ready when every one of them is.
      aggregator: 'min',
      collect() {
        ready.set(isReady() ? 1 : 0);
      },
    });
    const intakeOpen = () => this.intakeOpen();
    const intake = new Gauge({
      name: `${p}intake_open`,
      help: '0 once the intake switch is closed (intake.open: false) and no message received before it is still being spooled; 1 otherwise.',
      registers: r,
      collect() {
        intake.set(intakeOpen() ? 1 : 0);
      },
    });
    this.sessionsActive = new Gauge({
      name: `${p}smtp_sessions_active`,
      help: 'Inbound SMTP sessions open now.',
      labelNames: ['listener'],
      registers: r,
    });
    this.rejections = new Counter({
      name: `${p}smtp_rejections_total`,
      help: 'SMTP commands refused by the relay, by reply code and reason.',
      labelNames: ['code', 'reason'],
      registers: r,
    });
    this.spoolFreeBytes = new Gauge({
      name: `${p}spool_free_bytes`,
      help: 'Free bytes on the spool filesystem, or under spool.maxBytes when that is less.',
      registers: r,
      aggregator: 'min',
    });
    this.spoolQuarantined = new Counter({
      name: `${p}spool_quarantined_total`,
      help: 'Spool files that failed to decode and were moved to quarantine.',
      registers: r,
    });
    this.spoolWriteFailures = new Counter({
      name: `${p}spool_write_failures_total`,
      help: 'Spool writes or fsyncs that failed (the client got 451).',
      registers: r,
    });
    this.configReloads = new Counter({
      name: `${p}config_reloads_total`,
      help: 'Config reloads, by result (success or failure).',
      labelNames: ['result'],
      registers: r,
    });
    this.acceptLatency = new Histogram({
      name: `${p}accept_duration_seconds`,
      help: 'End of DATA to the 250 reply (spool write and fsync).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: r,
    });

    this.rateLimitDeferrals = new Counter({
      name: `${p}rate_limit_deferrals_total`,
      help: 'Messages held back by a RateLimit when their turn came (kept queued, no retry used).',
      labelNames: ['rate_limit'],
      registers: r,
    });
    this.backoffTransitions = new Counter({
      name: `${p}rate_limit_backoff_transitions_total`,
      help: 'Adaptive backoff changes of a limit destination, by the mode entered (backoff or normal).',
      labelNames: ['rate_limit', 'to'],
      registers: r,
    });
    const shapingSeries = () => (snapshot().shaping?.destinations ?? []).slice(0, TOP_LIMIT_DESTINATIONS);
    const admittedRate = new Gauge({
      name: `${p}rate_limit_admitted_rate`,
      help: 'Messages per second a limit destination admits now (share and backoff applied).',
      labelNames: ['rate_limit', 'destination'],
      registers: r,
      collect() {
        admittedRate.reset();
        for (const d of shapingSeries()) {
          if (d.ratePerSecond !== undefined)
            admittedRate.set({ rate_limit: d.limit, destination: d.destination }, d.ratePerSecond);
        }
      },
    });
    const backoffFactor = new Gauge({
      name: `${p}rate_limit_backoff_factor`,
      help: 'Adaptive backoff factor of a limit destination: 1 in normal mode, below 1 in backoff.',
      labelNames: ['rate_limit', 'destination'],
      registers: r,
      aggregator: 'min',
      collect() {
        backoffFactor.reset();
        for (const d of shapingSeries())
          backoffFactor.set({ rate_limit: d.limit, destination: d.destination }, d.backoffFactor);
      },
    });
    const destinations = new Gauge({
      name: `${p}destinations`,
      help: 'Limit destinations a RateLimit holds back now (rate_limited), and those in adaptive backoff (backed_off).',
      labelNames: ['state'],
      registers: r,
      collect() {
        const shaping = snapshot().shaping;
        destinations.set({ state: 'rate_limited' }, shaping?.rateLimited ?? 0);
        destinations.set({ state: 'backed_off' }, shaping?.backedOff ?? 0);
      },
    });

    const queueMessages = new Gauge({
      name: `${p}queue_jobs`,
      help: 'Queued delivery jobs (message x destination) by state and sending domain.',
      labelNames: ['state', 'sending_domain'],
      registers: r,
      collect() {
        queueMessages.reset();
        for (const [key, count] of snapshot().jobsByState) {
          const [state = '', domain = ''] = key.split('\0');
          queueMessages.set({ state, sending_domain: domain }, count);
        }
      },
    });
    const oldest = new Gauge({
      name: `${p}queue_oldest_message_age_seconds`,
      help: 'Age of the oldest queued message (0 when the queue is empty).',
      registers: r,
      aggregator: 'max',
      collect() {
        const at = snapshot().oldestReceivedAt;
        oldest.set(at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000));
      },
    });
    const spoolBytes = new Gauge({
      name: `${p}spool_bytes`,
      help: 'Bytes of queued message files.',
      registers: r,
      collect() {
        spoolBytes.set(snapshot().spoolBytes);
      },
    });
    const window = this.bounceWindow;
    const domains = () => this.sendingDomains;
    const bounceRate = new Gauge({
      name: `${p}bounce_rate_ratio`,
      help: 'Bounced / (delivered + bounced) recipients per sending domain over the last hour.',
      labelNames: ['sending_domain'],
      registers: r,
      aggregator: 'average',
      collect() {
        bounceRate.reset();
        const now = Date.now();
        for (const domain of [...domains(), 'other'])
          bounceRate.set({ sending_domain: domain }, window.rate(domain, now));
      },
    });
  }

  setSendingDomains(domains: readonly string[]): void {
    this.sendingDomains = new Set(domains);
  }

  /** Counts what link tracking did with one message of a tracking domain. */
  recordTracking(outcome: TrackingOutcome): void {
    if (outcome.result === 'untracked') return;
    const sending_domain = this.domainLabel(outcome.domain);
    this.trackingMessages.inc({ sending_domain, result: outcome.result.replaceAll('-', '_') });
    if (outcome.result === 'rewritten') this.trackingLinks.inc({ sending_domain }, outcome.links);
  }

  /** Bounded label value for a sender domain. */
  domainLabel(domain: string): string {
    return this.sendingDomains.has(domain) ? domain : 'other';
  }

  /** Bounded label value for a destination: the first TOP_DESTINATIONS seen keep their name. */
  destinationLabel(destination: string): string {
    if (this.destinations.has(destination)) return destination;
    if (this.destinations.size < TOP_DESTINATIONS) {
      this.destinations.add(destination);
      return destination;
    }
    return 'other';
  }
}

/**
 * The management port's counters: in each relay's registry, and in the primary process's when
 * worker processes run (it serves the port for them, relay/src/workers/primary.ts).
 */
export function adminCounters(registry: Registry): {
  httpRefusals: Counter<'reason'>;
  adminActions: Counter<'action' | 'role'>;
} {
  const p = 'mailfleet_relay_';
  return {
    httpRefusals: new Counter({
      name: `${p}http_auth_refusals_total`,
      help: 'Management requests refused: reason="missing" or "invalid" token (401), "forbidden" (403, read token on an admin route), "throttled" (429).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    adminActions: new Counter({
      name: `${p}admin_actions_total`,
      help: 'Authorised state-changing management requests (retry, delete, drain), by action and token role.',
      labelNames: ['action', 'role'],
      registers: [registry],
    }),
  };
}
