// The relay configuration: the contract between the operator (which renders it into a ConfigMap)
// and the relay (which reads it from a YAML file). `RelayConfigInput` is what may be written in the
// file; `RelayConfig` is what validateConfig() returns, every default applied.
//
// Durations are strings such as "30s", "5m", "1h", "5d" (see ./duration.ts); sizes are bytes.

export type Duration = string;

export interface ListenerConfig {
  enabled: boolean;
  host: string;
  port: number;
}

export interface ListenersConfig {
  /** Port 25 style relay: MX-less clients, STARTTLS offered when tls is configured. */
  smtp: ListenerConfig;
  /** Port 587 (RFC 6409): STARTTLS offered, AUTH as configured by auth.mode. */
  submission: ListenerConfig;
  /** Port 465 (RFC 8314): implicit TLS. Requires tls. */
  smtps: ListenerConfig;
}

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface TlsConfig {
  certFile: string;
  keyFile: string;
  minVersion: TlsMinVersion;
}

export type AuthMode = 'Required' | 'Optional' | 'Disabled';

export interface AuthConfig {
  /**
   * Required: every session must AUTH before MAIL FROM, whatever its address.
   * Optional: AUTH is offered; clients from allowedNetworks may relay without it.
   * Disabled: AUTH is not offered; only allowedNetworks may relay.
   */
  mode: AuthMode;
  /**
   * File of `username:hash` lines, the hash as produced by `mailfleet relay --hash-password`
   * (`$scrypt$N=16384,r=8,p=1$<salt b64>$<key b64>`). A YAML file with a `users:` map of the
   * same pairs is also accepted. Watched: edits take effect without a restart.
   */
  usersFile?: string;
  /**
   * Per-user sender domains: a user listed here may only use these domains in MAIL FROM (each
   * must still be a sending domain of the pool); a user not listed may use any of them.
   */
  userSenderDomains: Record<string, string[]>;
  /** AUTH failure throttle per client IP and per username (Postfix anvil style). */
  throttle: AuthThrottleConfig;
}

export interface AuthThrottleConfig {
  /** Failures within `window` that lock the client IP or username out for `lockout`. */
  maxFailures: number;
  window: Duration;
  lockout: Duration;
  /** Reply delay after the first failure; doubles with each further failure up to maxDelay. */
  baseDelay: Duration;
  maxDelay: Duration;
}

/** Proxies trusted to present another client address (XCLIENT command, PROXY protocol header). */
export interface ProxyTrustConfig {
  /** Exact peer addresses (not CIDRs) allowed to use XCLIENT; others get 550 for it. */
  xclient: string[];
  /** Peer addresses that must send a PROXY protocol v1 header; others may not send one. */
  proxyProtocol: string[];
}

export interface HeadersConfig {
  /** Remove Received, X-Originating-IP, X-Mailer, User-Agent, X-Forwarded-For on submission. */
  removeClientHeadersOnSubmission: boolean;
}

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimConfig {
  selector: string;
  algorithm: DkimAlgorithm;
  /** PEM private key. Watched. */
  keyFile: string;
}

export interface SendingDomainConfig {
  domain: string;
  /**
   * A suspended domain's mail is still accepted, and all of its mail is held in the queue (kept,
   * not attempted, no retry used) until a reload un-suspends it.
   */
  suspended: boolean;
  dkim?: DkimConfig;
  /**
   * Return-path domain: with `returnPath` configured at the top level, each recipient's copy leaves
   * with its own signed VERP envelope sender on this domain (relay return-path/verp.ts).
   */
  returnPath?: string;
  /** Open and click tracking of the domain's HTML mail (off when absent). */
  tracking?: DomainTrackingConfig;
}

export interface DomainTrackingConfig {
  opens: boolean;
  clicks: boolean;
  /** Host name of the tracking endpoint; links and the pixel point at https://<host>/. */
  host: string;
}

/** The key and limits of link tracking, for the domains that track (relay tracking/). */
export interface TrackingConfig {
  /** The HMAC key (at least 16 bytes) tracked links are signed with. Watched. */
  keyFile: string;
  /** Larger messages are delivered unrewritten. */
  maxMessageBytes: number;
  /** A larger HTML part (decoded) is left as it is. */
  maxHtmlBytes: number;
}

export type SmarthostTls = 'implicit' | 'starttls-required' | 'starttls-opportunistic';

export interface SmarthostConfig {
  host: string;
  port: number;
  tls: SmarthostTls;
  /** File holding `username:password` (one line) or YAML `{username, password}`. Watched. */
  credentialsFile?: string;
  /** Skip certificate verification (tests and self-signed lab hosts only). */
  tlsInsecure: boolean;
}

export interface DnsConfig {
  /** Resolver addresses, `ip` or `ip:port`. Empty: the system resolvers. */
  servers: string[];
}

export type DeliveryMode = 'direct' | 'smarthost';

/**
 * How direct (MX) delivery uses TLS (smarthost delivery has its own `smarthost.tls`):
 * - opportunistic: STARTTLS when offered, certificate not checked, clear text otherwise (RFC 7435).
 * - encrypt: STARTTLS required, certificate not checked (protects against passive listeners only).
 * - verify: STARTTLS required, the certificate must chain to a trusted CA and name the MX host.
 * - mta-sts: what the domain's MTA-STS policy (RFC 8461) says: enforce = only the MX hosts it
 *   lists, each as `verify`; testing = as opportunistic, failures reported; none published =
 *   opportunistic.
 * - dane: DANE (RFC 7672) through `daneResolver`: an MX host with validated TLSA records gets
 *   mail only over TLS its records authenticate; other hosts as opportunistic.
 * - dane-mta-sts: as dane; hosts without validated TLSA records as mta-sts (DANE wins, RFC 8461 §2).
 * A connection that does not meet its policy carries no mail: the message is deferred.
 */
export type OutboundTlsPolicy = 'opportunistic' | 'encrypt' | 'verify' | 'mta-sts' | 'dane' | 'dane-mta-sts';

export interface TlsDestinationPolicy {
  /** Recipient domain, exact or `*.` (subdomains only). */
  domain: string;
  policy: OutboundTlsPolicy;
}

export interface OutboundTlsConfig {
  /** Policy of recipient domains without an override. */
  default: OutboundTlsPolicy;
  /** Per recipient domain; the first matching entry wins (exact entries are tried first). */
  destinations: TlsDestinationPolicy[];
  /**
   * The DNSSEC-validating resolver DANE asks (`ip` or `ip:port`), one this relay trusts to validate
   * (on the node or in the pod: the AD bit it sets is believed). Empty: no DANE, `dane` is as
   * opportunistic and `dane-mta-sts` as mta-sts.
   */
  daneResolver: string;
}

export interface DeliveryConfig {
  mode: DeliveryMode;
  smarthost?: SmarthostConfig;
  dns: DnsConfig;
  /** Name sent in EHLO and in the Received header. */
  ehloName: string;
  /** Simultaneous outbound connections to one destination (a domain, or the smarthost). */
  maxConnectionsPerDestination: number;
  /** Simultaneous outbound connections in total. */
  maxConnections: number;
  /** Messages sent over one pooled connection before it is closed and a fresh one opened. */
  maxMessagesPerConnection: number;
  connectTimeout: Duration;
  /** Greeting and per-command timeout; RFC 5321 §4.5.3.2 asks for minutes, we default lower. */
  commandTimeout: Duration;
  /** Port used for direct (MX) delivery; 25 in production, another port in tests. */
  directPort: number;
  /** TLS policy of direct delivery. Optional in the type for older renderers; validateConfig fills it. */
  tlsPolicy?: OutboundTlsConfig;
  /** TLS-RPT (RFC 8460): daily reports to the recipient domains that ask for them. Absent: none. */
  tlsReports?: TlsReportsConfig;
}

export interface TlsReportsConfig {
  /** `organization-name` of the reports. */
  organizationName: string;
  /** From address of mailed reports; its domain is the submitter. */
  from: string;
  /** `contact-info` of the reports; defaults to `from`. */
  contactInfo: string;
}

export interface RetryConfig {
  /** Delay before the first retry; each later one doubles (with jitter) up to maxBackoff. */
  firstRetry: Duration;
  maxBackoff: Duration;
  /** A message still undelivered this long after arrival expires and bounces. */
  maxQueueLifetime: Duration;
  /**
   * A recipient whose NOTIFY lists DELAY (RFC 3461) and is still deferred this long after arrival
   * gets one "delayed" DSN (RFC 3464 Action: delayed); '0s': never.
   */
  delayWarningAfter: Duration;
}

export interface LimitsConfig {
  /** Bytes; advertised in EHLO SIZE (RFC 1870) and enforced on DATA. */
  maxMessageSize: number;
  maxRecipients: number;
  /** Simultaneous inbound SMTP sessions, all listeners together. */
  maxConnections: number;
  /** Simultaneous inbound SMTP sessions from one client IP. */
  maxConnectionsPerClient: number;
  /** Longest command line accepted (bytes); longer lines get 500 and the session closes. */
  maxLineLength: number;
  /** A session that sends nothing for this long is closed with 421. */
  idleTimeout: Duration;
  /**
   * Bytes per second a client must keep up while it owes input (inside DATA or mid-line),
   * measured over `dataRateWindow`; slower clients (slowloris) get 421. 0 disables.
   */
  minDataRate: number;
  dataRateWindow: Duration;
}

export type RatePer = 'second' | 'minute' | 'hour' | 'day';

/**
 * Which messages a limit applies to. Every non-empty list must match; an empty list matches
 * anything. Domains match exactly or by a leading `*.` (subdomains only).
 */
export interface RateLimitMatch {
  senderDomains: string[];
  recipientDomains: string[];
  senderAddresses: string[];
  /**
   * MX rollup: the recipient domain's MX hosts (exact or `*.`) must match one of these. The
   * limit's counters are then kept per MX site (the set of MX hosts), so every domain a provider
   * hosts shares them. Optional in the type for older renderers; validateConfig fills [].
   */
  recipientMXHosts?: string[];
}

/**
 * A traffic-shaping rule. Counters (token bucket, connections) are kept per destination: per MX
 * site when `match.recipientMXHosts` is set, per recipient domain when `match.recipientDomains`
 * is set, otherwise one set for everything the limit matches (a sender's total).
 */
export interface RateLimitConfig {
  name: string;
  match: RateLimitMatch;
  /** Absent: the limit only caps connections and/or messages per connection. */
  rate?: { messages: number; per: RatePer };
  /** Messages that may go at once after an idle period; defaults to rate.messages. */
  burst: number;
  /** Concurrent outbound deliveries (connections) per destination. */
  maxConnections?: number;
  /** Messages sent over one outbound connection before it is replaced. */
  maxMessagesPerConnection?: number;
  /**
   * defer: the message stays queued until the limit admits it (no retry counter used).
   * reject: the rate is enforced at RCPT TO with `451 4.7.0`; the client retries later.
   */
  onExceed: 'defer' | 'reject';
  /**
   * This relay's share (0 < share <= 1) of a Pool-scoped limit, computed by the operator from
   * the ready replicas; 1 for PerRelay limits. Scales the rate (and burst) and maxConnections
   * (rounded down, at least 1). A new share applies on reload, keeping the bucket's debt.
   * Optional in the type for older renderers; validateConfig fills 1.
   */
  share?: number;
  /**
   * The pool-wide numbers of a Pool-scoped limit, for a pool with `sharedState`: the relays then
   * enforce them together in the store (GCRA, one atomic decision per message; a deferring limit
   * books its slot up to 1 s ahead, a rejecting one only counts what goes now; connections as
   * leases, one per open connection) and fall back to their own share (`rate`, `burst`,
   * `maxConnections`) only while the store does not answer.
   */
  pool?: PoolRate;
}

/** The numbers a whole pool enforces for one RateLimit through the shared store. */
export interface PoolRate {
  /** Absent: the limit has no rate (only connection caps). */
  rate?: { messages: number; per: RatePer };
  /** With `rate`: messages that may go at once after an idle period. */
  burst?: number;
  /**
   * Connections open at once to one limit destination from the whole pool: each open connection
   * holds a lease in the store (expiring unless refreshed, so a relay that dies frees its room).
   */
  maxConnections?: number;
}

/** PowerMTA-style backoff: a destination answering with throttling signs gets a lower rate. */
export interface AdaptiveBackoffConfig {
  enabled: boolean;
  /**
   * Reply texts (case-insensitive regular expressions) that mean "slow down" on a 4xx reply, in
   * addition to 421 and any 4.7.x enhanced code.
   */
  throttlePatterns: string[];
  /** Factor applied to the rate on a throttling reply (0.5 halves it). */
  decrease: number;
  /** Factor applied on each recovery step. */
  increase: number;
  /** Lowest factor the rate may fall to. */
  minFactor: number;
  /** Successful deliveries needed before each recovery step. */
  successesPerStep: number;
  /** Minimum time between two changes, so one burst of 421s counts once. */
  hold: Duration;
}

export interface SpoolConfig {
  dir: string;
  /** Below this many free bytes on the spool filesystem MAIL FROM gets 452 4.3.1 and /readyz fails. */
  minFreeBytes: number;
  /**
   * The spool's quota, or 0 for none: free space is then at most maxBytes minus the spool's own
   * bytes. An emptyDir with a sizeLimit needs it, because statfs sees the node's whole disk while
   * the kubelet evicts the pod (and the emptyDir spool with it) once the spool outgrows the limit.
   */
  maxBytes: number;
}

/** `read` may inspect the queue and messages; `admin` may also retry, delete and drain. */
export type AdminRole = 'read' | 'admin';

export interface AdminTokenConfig {
  /** Who holds the token, as written in audit logs (`operator`, `oncall`...). Unique. */
  name: string;
  role: AdminRole;
  /** File holding the bearer token (surrounding whitespace ignored, at least 16 characters). Watched. */
  file: string;
}

export interface HttpConfig {
  host: string;
  port: number;
  /**
   * Bearer tokens for /api and /drain. None configured: /api and /drain refuse every request
   * (401); /metrics, /healthz and /readyz are always open.
   */
  tokens: AdminTokenConfig[];
  /** Failed token attempts per client address: a bucket of `burst`, refilled one per `refill`. */
  authThrottle: HttpAuthThrottleConfig;
}

export interface HttpAuthThrottleConfig {
  burst: number;
  refill: Duration;
}

export interface AccountingConfig {
  /** JSON-lines file, one line per recipient outcome. Empty string: accounting off. */
  file: string;
}

/**
 * The suppression list (relay/src/suppression/): recipients that hard-bounced, complained or were
 * added by an operator are refused at RCPT TO with 550. Kept in memory, journalled to `file` on the
 * spool volume.
 */
export interface SuppressionConfig {
  /** false: nothing is looked up or added (the API still manages the list). */
  enabled: boolean;
  /** The journal; default `<spool.dir>/suppression.jsonl`. */
  file: string;
  /** Add a recipient whose delivery got a permanent bad-mailbox or bad-domain reply (5.1.x). */
  fromHardBounces: boolean;
  /** How long an entry made by a hard bounce lasts; "0s": until removed. */
  hardBounceTtl: Duration;
  /** How long an entry made by a complaint lasts; "0s": until removed. */
  complaintTtl: Duration;
}

/**
 * The Valkey/Redis store the relays of a pool share state through (relay/src/shared-state/): the
 * suppression list today. Absent: every relay keeps its own. The store being down never stops
 * mail: decisions stay local and changes wait in a durable outbox until it is back.
 */
export interface SharedStateConfig {
  /** `redis://host:port` or `rediss://host:port` (TLS). */
  url: string;
  /** File holding the store's password (`requirepass`, or the ACL user's). Watched at start only. */
  passwordFile?: string;
  /** Prefix of every key, one per pool (the operator uses `mailfleet:<namespace>/<pool>:`). */
  keyPrefix: string;
}

/** The events a webhook sink receives (relay: the first five; tracker: opened and clicked). */
export const EVENT_TYPES = [
  'delivered',
  'deferred',
  'bounced',
  'complained',
  'suppressed',
  'opened',
  'clicked',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * The events webhook (relay/src/events/): JSON lines POSTed in batches, HMAC-signed, from a durable
 * outbox on the spool volume, delivered at least once; each event carries an idempotency key.
 */
export interface EventsConfig {
  /** http(s) URL the batches are POSTed to. */
  url: string;
  /** File holding the HMAC-SHA256 signing secret (at least 16 bytes). */
  secretFile: string;
  /** Event types sent; the others are not written to the outbox. */
  types: EventType[];
  /** Most events in one POST. */
  batchSize: number;
  /** How long the first event of a batch waits for others before the batch goes. */
  batchInterval: Duration;
  /** The outbox directory; default `<spool.dir>/events`. */
  dir: string;
  /** Bound of the outbox on disk; when full the oldest segment is dropped (counted), mail never waits. */
  maxBytes: number;
  /** How long one POST may take. */
  timeout: Duration;
  /** Longest wait between retries of a failed batch (backoff doubles from 1 s up to this). */
  maxBackoff: Duration;
}

export interface DsnConfig {
  enabled: boolean;
}

/**
 * The internal handoff port: on drain a relay transfers its remaining queue, spool record by spool
 * record, to ready peers of the same pool, and it receives the queues of its draining peers here.
 * Requests and replies are authenticated with the pool's shared secret (handoff/auth.ts).
 */
export interface HandoffConfig {
  /** Listen address of the internal port. */
  host: string;
  /** Internal port; peers found through `service` are dialled on it too. 0 in tests. */
  port: number;
  /** File holding the pool's shared handoff secret (operator: a create-only Secret). */
  secretFile: string;
  /** DNS name whose A/AAAA records are the pool's relays (the operator's headless Service). */
  service?: string;
  /** Static peers, `host:port` (tests, or pools outside Kubernetes). */
  peers: string[];
  /**
   * Resolvers for `service`, `ip` or `ip:port`; empty: the system resolver with its search
   * domains (in a pod, `<svc>.<namespace>.svc` resolves through the cluster DNS).
   */
  dnsServers: string[];
  /**
   * Evacuation: the relay stops delivering and hands its whole queue (and whatever joins it later)
   * to the relays of ANOTHER pool, signed with that pool's secret (pool deletion with a successor).
   * Followed on reload; absent: the relay delivers.
   */
  evacuateTo?: EvacuationTarget;
}

/** The relays of the pool that receives an evacuating relay's queue. */
export interface EvacuationTarget {
  /** DNS name whose A/AAAA records are the target pool's relays, dialled on `handoff.port`. */
  service?: string;
  /** Static target relays, `host:port`. */
  peers: string[];
  /** File holding the TARGET pool's handoff secret (at least 16 characters). */
  secretFile: string;
}

/**
 * Whether the public listeners take new mail. The operator closes it on the relays of a pool being
 * deleted with deletionPolicy Drain, so that pool's queue can empty; the relay follows a change on
 * reload. Delivery, the handoff port and the return-path listener are not affected.
 */
export interface IntakeConfig {
  /** false: new sessions get 421 4.3.2, MAIL FROM gets 421, a message ending DATA gets 451. */
  open: boolean;
}

/** Signed VERP envelope senders, and the listener for the bounces and complaints sent to them. */
export interface ReturnPathConfig {
  /** File holding the pool's VERP signing key (at least 16 characters). Watched. */
  keyFile: string;
  /** Where return-path mail (the return-path domains' MX) is received. */
  listener: ListenerConfig;
}

export interface RelayConfig {
  listeners: ListenersConfig;
  tls?: TlsConfig;
  auth: AuthConfig;
  /** CIDRs allowed to relay without AUTH (unless auth.mode is Required). */
  allowedNetworks: string[];
  /**
   * CIDRs whose sessions skip smtp-server's 100 ms early-talker pause before the greeting
   * (a pod's own health checks, trusted internal submitters, benchmarks).
   */
  trustedNetworks: string[];
  sendingDomains: SendingDomainConfig[];
  /** Required when a sending domain tracks opens or clicks. */
  tracking?: TrackingConfig;
  trustedProxies: ProxyTrustConfig;
  headers: HeadersConfig;
  delivery: DeliveryConfig;
  retry: RetryConfig;
  limits: LimitsConfig;
  rateLimits: RateLimitConfig[];
  adaptiveBackoff: AdaptiveBackoffConfig;
  spool: SpoolConfig;
  http: HttpConfig;
  accounting: AccountingConfig;
  dsn: DsnConfig;
  /** VERP and the bounce/complaint listener; absent: envelope senders are left as submitted. */
  returnPath?: ReturnPathConfig;
  suppression: SuppressionConfig;
  /** Pool-wide state in Valkey/Redis; absent: per-relay state only. */
  sharedState?: SharedStateConfig;
  /** Transfer of the queue to peers of the same pool on drain (scale-down, rollout). */
  handoff?: HandoffConfig;
  /** The events webhook; absent: no events are written or sent. */
  events?: EventsConfig;
  intake: IntakeConfig;
  /** How long SIGTERM / POST /drain may take before the relay exits, queue left in the spool. */
  drainTimeout: Duration;
  /** Name used in the SMTP greeting; defaults to delivery.ehloName. */
  hostname: string;
  /**
   * Relay processes in the pod (relay/src/workers/): each owns a spool shard and shares the
   * listeners; 1 is one process. Fewer run when a split limit is smaller than the count.
   */
  workers: number;
}

type DeepPartial<T> = T extends (infer U)[]
  ? DeepPartial<U>[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** What the YAML file may contain: everything optional except what has no sensible default. */
export type RelayConfigInput = DeepPartial<RelayConfig>;

export interface ConfigError {
  /** Dotted path of the offending field, e.g. `delivery.smarthost.port`. */
  path: string;
  message: string;
}

export type ValidationResult = { ok: true; config: RelayConfig } | { ok: false; errors: ConfigError[] };
