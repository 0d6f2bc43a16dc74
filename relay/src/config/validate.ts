// validateConfig(): raw YAML value in, fully defaulted RelayConfig or a list of errors that name
// the field out. Pure: no file access, no clock, no environment.
import type {
  AdaptiveBackoffConfig,
  AdminTokenConfig,
  DkimConfig,
  DomainTrackingConfig,
  EventsConfig,
  EventType,
  EvacuationTarget,
  ListenerConfig,
  OutboundTlsConfig,
  PoolRate,
  RateLimitConfig,
  RelayConfig,
  SendingDomainConfig,
  SmarthostConfig,
  TlsDestinationPolicy,
  TlsReportsConfig,
  TrackingConfig,
  ValidationResult,
} from './types.ts';
import { FieldReader, cidrProblem, domainProblem, hostProblem, join, type Obj } from './fields.ts';
import { parseDuration } from '../../../contract/duration.ts';
import { DEFAULTS } from '../../../contract/defaults.ts';
import { EVENT_TYPES } from '../../../contract/config.ts';
import { SMTPS_PORT, SUBMISSION_PORT } from '../../../contract/layout.ts';
import { isIP } from 'node:net';

export interface ValidateOptions {
  /** Default for delivery.ehloName and hostname (main passes os.hostname()). */
  defaultHostname?: string;
}

const TOP_LEVEL = [
  'listeners',
  'tls',
  'auth',
  'allowedNetworks',
  'trustedNetworks',
  'sendingDomains',
  'tracking',
  'trustedProxies',
  'headers',
  'delivery',
  'retry',
  'limits',
  'rateLimits',
  'adaptiveBackoff',
  'spool',
  'http',
  'accounting',
  'suppression',
  'sharedState',
  'dsn',
  'handoff',
  'events',
  'returnPath',
  'drainTimeout',
  'intake',
  'hostname',
  'workers',
] as const;

export function validateConfig(raw: unknown, options: ValidateOptions = {}): ValidationResult {
  const r = new FieldReader();
  const root = r.object(raw, '', TOP_LEVEL);
  if (raw === undefined || raw === null) r.fail('(root)', 'the config file is empty');

  const listenersRaw = r.object(root.listeners, 'listeners', ['smtp', 'submission', 'smtps']);
  const listeners = {
    smtp: listener(r, listenersRaw.smtp, 'listeners.smtp', DEFAULTS.listeners.smtp),
    submission: listener(r, listenersRaw.submission, 'listeners.submission', DEFAULTS.listeners.submission),
    smtps: listener(r, listenersRaw.smtps, 'listeners.smtps', DEFAULTS.listeners.smtps),
  };

  let tls: RelayConfig['tls'];
  if (root.tls !== undefined && root.tls !== null) {
    const t = r.object(root.tls, 'tls', ['certFile', 'keyFile', 'minVersion']);
    tls = {
      certFile: r.string(t, 'certFile', 'tls', '', true),
      keyFile: r.string(t, 'keyFile', 'tls', '', true),
      minVersion: r.oneOf(t, 'minVersion', 'tls', ['TLSv1.2', 'TLSv1.3'], 'TLSv1.2'),
    };
  }
  if (listeners.smtps.enabled && !tls)
    r.fail('listeners.smtps.enabled', 'implicit TLS needs tls.certFile and tls.keyFile');

  const a = r.object(root.auth, 'auth', ['mode', 'usersFile', 'userSenderDomains', 'throttle']);
  const th = r.object(a.throttle, 'auth.throttle', [
    'maxFailures',
    'window',
    'lockout',
    'baseDelay',
    'maxDelay',
  ]);
  const T = DEFAULTS.authThrottle;
  const userDomainsRaw = r.object(
    a.userSenderDomains,
    'auth.userSenderDomains',
    Object.keys(a.userSenderDomains ?? {}),
  );
  const userSenderDomains: Record<string, string[]> = {};
  for (const user of Object.keys(userDomainsRaw))
    userSenderDomains[user] = r
      .stringList(userDomainsRaw, user, 'auth.userSenderDomains', domainProblem)
      .map((d) => d.toLowerCase());
  const auth = {
    mode: r.oneOf(a, 'mode', 'auth', ['Required', 'Optional', 'Disabled'], 'Disabled'),
    usersFile: r.optionalString(a, 'usersFile', 'auth'),
    userSenderDomains,
    throttle: {
      maxFailures: r.integer(th, 'maxFailures', 'auth.throttle', T.maxFailures, 1, 1000),
      window: r.duration(th, 'window', 'auth.throttle', T.window),
      lockout: r.duration(th, 'lockout', 'auth.throttle', T.lockout),
      baseDelay: r.duration(th, 'baseDelay', 'auth.throttle', T.baseDelay),
      maxDelay: r.duration(th, 'maxDelay', 'auth.throttle', T.maxDelay),
    },
  };
  const px = r.object(root.trustedProxies, 'trustedProxies', ['xclient', 'proxyProtocol']);
  const addressProblem = (text: string) =>
    isIP(text) ? undefined : `${JSON.stringify(text)} is not an IP address`;
  const trustedProxies = {
    xclient: r.stringList(px, 'xclient', 'trustedProxies', addressProblem),
    proxyProtocol: r.stringList(px, 'proxyProtocol', 'trustedProxies', addressProblem),
  };
  const hd = r.object(root.headers, 'headers', ['removeClientHeadersOnSubmission']);
  const headers = {
    removeClientHeadersOnSubmission: r.boolean(hd, 'removeClientHeadersOnSubmission', 'headers', false),
  };
  if (auth.mode !== 'Disabled' && !auth.usersFile)
    r.fail('auth.usersFile', `is required when auth.mode is ${auth.mode}`);

  const allowedNetworks = r.stringList(root, 'allowedNetworks', '', cidrProblem);
  const trustedNetworks = r.stringList(root, 'trustedNetworks', '', cidrProblem);

  const sendingDomains: SendingDomainConfig[] = [];
  const seenDomains = new Set<string>();
  r.list(root, 'sendingDomains', '').forEach((item, i) => {
    const path = `sendingDomains[${i}]`;
    const d = r.object(item, path, ['domain', 'suspended', 'dkim', 'returnPath', 'tracking']);
    const domain = r.string(d, 'domain', path, '', true).toLowerCase();
    if (domain) {
      const problem = domainProblem(domain);
      if (problem) r.fail(join(path, 'domain'), problem);
      if (seenDomains.has(domain)) r.fail(join(path, 'domain'), `${domain} is listed twice`);
      seenDomains.add(domain);
    }
    const entry: SendingDomainConfig = { domain, suspended: r.boolean(d, 'suspended', path, false) };
    if (d.dkim !== undefined && d.dkim !== null) entry.dkim = dkim(r, d.dkim, join(path, 'dkim'));
    const returnPath = r.optionalString(d, 'returnPath', path)?.toLowerCase();
    if (returnPath) {
      const problem = domainProblem(returnPath);
      if (problem) r.fail(join(path, 'returnPath'), problem);
      entry.returnPath = returnPath;
    }
    if (d.tracking !== undefined && d.tracking !== null)
      entry.tracking = domainTracking(r, d.tracking, join(path, 'tracking'));
    sendingDomains.push(entry);
  });
  const tracking = trackingConfig(r, root.tracking);
  if (!tracking && sendingDomains.some((d) => d.tracking && (d.tracking.opens || d.tracking.clicks)))
    r.fail('tracking.keyFile', 'is required when a sending domain tracks opens or clicks');

  const hostname = r.string(root, 'hostname', '', '') || undefined;
  const del = r.object(root.delivery, 'delivery', [
    'mode',
    'smarthost',
    'dns',
    'ehloName',
    'maxConnectionsPerDestination',
    'maxConnections',
    'maxMessagesPerConnection',
    'connectTimeout',
    'commandTimeout',
    'directPort',
    'tlsPolicy',
    'tlsReports',
  ]);
  const mode = r.oneOf(del, 'mode', 'delivery', ['direct', 'smarthost'], 'direct');
  const dnsRaw = r.object(del.dns, 'delivery.dns', ['servers']);
  const ehloName = r.string(del, 'ehloName', 'delivery', hostname ?? options.defaultHostname ?? 'localhost');
  if (ehloName && hostProblem(ehloName)) r.fail('delivery.ehloName', hostProblem(ehloName) ?? '');
  const delivery: RelayConfig['delivery'] = {
    mode,
    dns: { servers: r.stringList(dnsRaw, 'servers', 'delivery.dns', resolverProblem) },
    ehloName,
    maxConnectionsPerDestination: r.integer(del, 'maxConnectionsPerDestination', 'delivery', 10, 1, 1000),
    maxConnections: r.integer(del, 'maxConnections', 'delivery', 100, 1, 10000),
    maxMessagesPerConnection: r.integer(del, 'maxMessagesPerConnection', 'delivery', 100, 1, 100000),
    connectTimeout: r.duration(del, 'connectTimeout', 'delivery', '30s'),
    commandTimeout: r.duration(del, 'commandTimeout', 'delivery', '60s'),
    directPort: r.port(del, 'directPort', 'delivery', 25),
    tlsPolicy: tlsPolicy(r, del.tlsPolicy, 'delivery.tlsPolicy'),
  };
  if (del.tlsReports !== undefined && del.tlsReports !== null)
    delivery.tlsReports = tlsReports(r, del.tlsReports, 'delivery.tlsReports');
  if (del.smarthost !== undefined && del.smarthost !== null) {
    delivery.smarthost = smarthost(r, del.smarthost, 'delivery.smarthost');
  } else if (mode === 'smarthost') {
    r.fail('delivery.smarthost', 'is required when delivery.mode is smarthost');
  }

  const re = r.object(root.retry, 'retry', [
    'firstRetry',
    'maxBackoff',
    'maxQueueLifetime',
    'delayWarningAfter',
  ]);
  const retry = {
    firstRetry: r.duration(re, 'firstRetry', 'retry', DEFAULTS.retry.firstRetry),
    maxBackoff: r.duration(re, 'maxBackoff', 'retry', DEFAULTS.retry.maxBackoff),
    maxQueueLifetime: r.duration(re, 'maxQueueLifetime', 'retry', DEFAULTS.retry.maxQueueLifetime),
    delayWarningAfter: r.duration(re, 'delayWarningAfter', 'retry', DEFAULTS.retry.delayWarningAfter),
  };
  if ((parseDuration(retry.maxBackoff) ?? 0) < (parseDuration(retry.firstRetry) ?? 0)) {
    r.fail('retry.maxBackoff', 'must not be shorter than retry.firstRetry');
  }

  const l = r.object(root.limits, 'limits', [
    'maxMessageSize',
    'maxRecipients',
    'maxConnections',
    'maxConnectionsPerClient',
    'maxLineLength',
    'idleTimeout',
    'minDataRate',
    'dataRateWindow',
  ]);
  const D = DEFAULTS.limits;
  const limits = {
    maxMessageSize: r.integer(l, 'maxMessageSize', 'limits', D.maxMessageSize, 1024, 2 ** 31),
    maxRecipients: r.integer(l, 'maxRecipients', 'limits', D.maxRecipients, 1, 100000),
    maxConnections: r.integer(l, 'maxConnections', 'limits', D.maxConnections, 1, 100000),
    maxConnectionsPerClient: r.integer(
      l,
      'maxConnectionsPerClient',
      'limits',
      D.maxConnectionsPerClient,
      1,
      100000,
    ),
    // RFC 5321 §4.5.3.1.4: 512 octets for a command line; AUTH PLAIN lines may be longer.
    maxLineLength: r.integer(l, 'maxLineLength', 'limits', D.maxLineLength, 512, 65536),
    idleTimeout: r.duration(l, 'idleTimeout', 'limits', D.idleTimeout),
    minDataRate: r.integer(l, 'minDataRate', 'limits', D.minDataRate, 0, 1e9),
    dataRateWindow: r.duration(l, 'dataRateWindow', 'limits', D.dataRateWindow),
  };

  const rateLimits: RateLimitConfig[] = [];
  const seenLimits = new Set<string>();
  r.list(root, 'rateLimits', '').forEach((item, i) => {
    const limit = rateLimit(r, item, `rateLimits[${i}]`);
    if (seenLimits.has(limit.name)) r.fail(`rateLimits[${i}].name`, `${limit.name} is listed twice`);
    seenLimits.add(limit.name);
    rateLimits.push(limit);
  });

  const s = r.object(root.spool, 'spool', ['dir', 'minFreeBytes', 'maxBytes']);
  const spool = {
    dir: r.string(s, 'dir', 'spool', DEFAULTS.spool.dir),
    minFreeBytes: r.integer(
      s,
      'minFreeBytes',
      'spool',
      DEFAULTS.spool.minFreeBytes,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    maxBytes: r.integer(s, 'maxBytes', 'spool', DEFAULTS.spool.maxBytes, 0, Number.MAX_SAFE_INTEGER),
  };
  if (!spool.dir) r.fail('spool.dir', 'must not be empty');

  const h = r.object(root.http, 'http', ['host', 'port', 'tokens', 'authThrottle']);
  const ht = r.object(h.authThrottle, 'http.authThrottle', ['burst', 'refill']);
  const http = {
    host: r.string(h, 'host', 'http', DEFAULTS.http.host),
    port: r.integer(h, 'port', 'http', DEFAULTS.http.port, 0, 65535),
    tokens: adminTokens(r, h),
    authThrottle: {
      burst: r.integer(ht, 'burst', 'http.authThrottle', DEFAULTS.http.authThrottle.burst, 1, 10000),
      refill: r.duration(ht, 'refill', 'http.authThrottle', DEFAULTS.http.authThrottle.refill),
    },
  };

  const acc = r.object(root.accounting, 'accounting', ['file']);
  const accounting = {
    file: r.string(acc, 'file', 'accounting', `${spool.dir.replace(/\/$/, '')}/accounting.jsonl`),
  };
  const dsnRaw = r.object(root.dsn, 'dsn', ['enabled']);
  const dsn = { enabled: r.boolean(dsnRaw, 'enabled', 'dsn', true) };
  const sup = r.object(root.suppression, 'suppression', [
    'enabled',
    'file',
    'fromHardBounces',
    'hardBounceTtl',
    'complaintTtl',
  ]);
  const suppression = {
    enabled: r.boolean(sup, 'enabled', 'suppression', true),
    file: r.string(sup, 'file', 'suppression', `${spool.dir.replace(/\/$/, '')}/suppression.jsonl`),
    fromHardBounces: r.boolean(sup, 'fromHardBounces', 'suppression', true),
    hardBounceTtl: r.duration(sup, 'hardBounceTtl', 'suppression', '0s'),
    complaintTtl: r.duration(sup, 'complaintTtl', 'suppression', '0s'),
  };
  if (!suppression.file) r.fail('suppression.file', 'must not be empty');
  let sharedState: RelayConfig['sharedState'];
  if (root.sharedState !== undefined && root.sharedState !== null) {
    const ss = r.object(root.sharedState, 'sharedState', ['url', 'passwordFile', 'keyPrefix']);
    sharedState = {
      url: r.string(ss, 'url', 'sharedState', '', true),
      keyPrefix: r.string(ss, 'keyPrefix', 'sharedState', 'mailfleet:'),
    };
    if (sharedState.url && !/^rediss?:\/\/[^/\s]+/.test(sharedState.url))
      r.fail('sharedState.url', 'must be redis://host:port or rediss://host:port');
    const passwordFile = r.optionalString(ss, 'passwordFile', 'sharedState');
    if (passwordFile) sharedState.passwordFile = passwordFile;
  }

  let handoff: RelayConfig['handoff'];
  if (root.handoff !== undefined && root.handoff !== null) {
    const ho = r.object(root.handoff, 'handoff', [
      'host',
      'port',
      'secretFile',
      'service',
      'peers',
      'dnsServers',
      'evacuateTo',
    ]);
    handoff = {
      host: r.string(ho, 'host', 'handoff', DEFAULTS.handoff.host),
      port: r.integer(ho, 'port', 'handoff', DEFAULTS.handoff.port, 0, 65535),
      secretFile: r.string(ho, 'secretFile', 'handoff', '', true),
      peers: r.stringList(ho, 'peers', 'handoff', peerProblem),
      dnsServers: r.stringList(ho, 'dnsServers', 'handoff', resolverProblem),
    };
    const service = r.optionalString(ho, 'service', 'handoff');
    if (service) {
      if (hostProblem(service)) r.fail('handoff.service', hostProblem(service) ?? '');
      handoff.service = service;
    }
    const evacuateTo = evacuationTarget(r, ho.evacuateTo);
    if (evacuateTo) handoff.evacuateTo = evacuateTo;
  }

  let returnPath: RelayConfig['returnPath'];
  if (root.returnPath !== undefined && root.returnPath !== null) {
    const rp = r.object(root.returnPath, 'returnPath', ['keyFile', 'listener']);
    returnPath = {
      keyFile: r.string(rp, 'keyFile', 'returnPath', '', true),
      listener: listener(r, rp.listener, 'returnPath.listener', DEFAULTS.returnPathListener),
    };
  }

  const config: RelayConfig = {
    listeners,
    auth,
    allowedNetworks,
    trustedNetworks,
    sendingDomains,
    trustedProxies,
    headers,
    delivery,
    retry,
    limits,
    rateLimits,
    adaptiveBackoff: adaptiveBackoff(r, root.adaptiveBackoff),
    spool,
    http,
    accounting,
    dsn,
    suppression,
    drainTimeout: r.duration(root, 'drainTimeout', '', DEFAULTS.drainTimeout),
    intake: {
      open: r.boolean(r.object(root.intake, 'intake', ['open']), 'open', 'intake', DEFAULTS.intake.open),
    },
    hostname: hostname ?? ehloName,
    workers: r.integer(root, 'workers', '', 1, 1, 64),
  };
  if (tls) config.tls = tls;
  if (tracking) config.tracking = tracking;
  if (handoff) config.handoff = handoff;
  if (sharedState) config.sharedState = sharedState;
  const events = eventsConfig(r, root.events, spool.dir);
  if (events) config.events = events;
  if (returnPath) config.returnPath = returnPath;
  checkPortClash(r, config);

  return r.errors.length > 0 ? { ok: false, errors: r.errors } : { ok: true, config };
}

/** handoff.evacuateTo: the target pool's relays by Service name or static list, and its secret. */
function evacuationTarget(r: FieldReader, raw: unknown): EvacuationTarget | undefined {
  if (raw === undefined || raw === null) return undefined;
  const path = 'handoff.evacuateTo';
  const ev = r.object(raw, path, ['service', 'peers', 'secretFile']);
  const target: EvacuationTarget = {
    peers: r.stringList(ev, 'peers', path, peerProblem),
    secretFile: r.string(ev, 'secretFile', path, '', true),
  };
  const service = r.optionalString(ev, 'service', path);
  if (service) {
    if (hostProblem(service)) r.fail(`${path}.service`, hostProblem(service) ?? '');
    target.service = service;
  }
  const listed = Array.isArray(ev.peers) && ev.peers.length > 0;
  if (!target.service && !listed) r.fail(path, 'needs a service or peers');
  return target;
}

/** A static handoff peer: `host:port`, port 1-65535. */
function peerProblem(text: string): string | undefined {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535)
    return `${JSON.stringify(text)} is not host:port`;
  return undefined;
}

function listener(r: FieldReader, raw: unknown, path: string, fallback: ListenerConfig): ListenerConfig {
  const o = r.object(raw, path, ['enabled', 'host', 'port']);
  return {
    enabled: r.boolean(o, 'enabled', path, fallback.enabled),
    host: r.string(o, 'host', path, fallback.host),
    // Port 0 lets tests ask the kernel for a free port.
    port: r.integer(o, 'port', path, fallback.port, 0, 65535),
  };
}

function dkim(r: FieldReader, raw: unknown, path: string): DkimConfig {
  const o = r.object(raw, path, ['selector', 'algorithm', 'keyFile']);
  return {
    selector: r.string(o, 'selector', path, '', true),
    algorithm: r.oneOf(o, 'algorithm', path, ['rsa-sha256', 'ed25519-sha256'], 'rsa-sha256'),
    keyFile: r.string(o, 'keyFile', path, '', true),
  };
}

function domainTracking(r: FieldReader, raw: unknown, path: string): DomainTrackingConfig {
  const o = r.object(raw, path, ['opens', 'clicks', 'host']);
  const host = r.string(o, 'host', path, '', true);
  if (host && hostProblem(host)) r.fail(join(path, 'host'), hostProblem(host) ?? '');
  return { opens: r.boolean(o, 'opens', path, false), clicks: r.boolean(o, 'clicks', path, false), host };
}

function trackingConfig(r: FieldReader, raw: unknown): TrackingConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = r.object(raw, 'tracking', ['keyFile', 'maxMessageBytes', 'maxHtmlBytes']);
  return {
    keyFile: r.string(o, 'keyFile', 'tracking', '', true),
    maxMessageBytes: r.integer(
      o,
      'maxMessageBytes',
      'tracking',
      DEFAULTS.tracking.maxMessageBytes,
      1,
      2 ** 40,
    ),
    maxHtmlBytes: r.integer(o, 'maxHtmlBytes', 'tracking', DEFAULTS.tracking.maxHtmlBytes, 1, 2 ** 40),
  };
}

function eventsConfig(r: FieldReader, raw: unknown, spoolDir: string): EventsConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const path = 'events';
  const o = r.object(raw, path, [
    'url',
    'secretFile',
    'types',
    'batchSize',
    'batchInterval',
    'dir',
    'maxBytes',
    'timeout',
    'maxBackoff',
  ]);
  const url = r.string(o, 'url', path, '', true);
  if (url && !/^https?:\/\/[^/\s]+/.test(url)) r.fail('events.url', 'must be an http:// or https:// URL');
  const known: readonly string[] = EVENT_TYPES;
  const types = r.stringList(o, 'types', path, (t) =>
    known.includes(t) ? undefined : `must be one of ${EVENT_TYPES.join(', ')}`,
  ) as EventType[];
  const d = DEFAULTS.events;
  return {
    url,
    secretFile: r.string(o, 'secretFile', path, '', true),
    types: o.types === undefined || o.types === null ? [...EVENT_TYPES] : types,
    batchSize: r.integer(o, 'batchSize', path, d.batchSize, 1, 10_000),
    batchInterval: r.duration(o, 'batchInterval', path, d.batchInterval),
    dir: r.string(o, 'dir', path, `${spoolDir.replace(/\/$/, '')}/events`),
    // A floor of 64 KiB: eight segments of at least 8 KiB.
    maxBytes: r.integer(o, 'maxBytes', path, d.maxBytes, 64 * 1024, 2 ** 40),
    timeout: r.duration(o, 'timeout', path, d.timeout),
    maxBackoff: r.duration(o, 'maxBackoff', path, d.maxBackoff),
  };
}

function smarthost(r: FieldReader, raw: unknown, path: string): SmarthostConfig {
  const o = r.object(raw, path, ['host', 'port', 'tls', 'credentialsFile', 'tlsInsecure']);
  const host = r.string(o, 'host', path, '', true);
  if (host && hostProblem(host)) r.fail(join(path, 'host'), hostProblem(host) ?? '');
  const tls = r.oneOf(
    o,
    'tls',
    path,
    ['implicit', 'starttls-required', 'starttls-opportunistic'],
    'starttls-required',
  );
  const result: SmarthostConfig = {
    host,
    port: r.port(o, 'port', path, tls === 'implicit' ? SMTPS_PORT : SUBMISSION_PORT),
    tls,
    tlsInsecure: r.boolean(o, 'tlsInsecure', path, false),
  };
  const credentialsFile = r.optionalString(o, 'credentialsFile', path);
  if (credentialsFile) result.credentialsFile = credentialsFile;
  return result;
}

const TLS_POLICIES = ['opportunistic', 'encrypt', 'verify', 'mta-sts', 'dane', 'dane-mta-sts'] as const;

function tlsPolicy(r: FieldReader, raw: unknown, path: string): OutboundTlsConfig {
  const o = r.object(raw, path, ['default', 'destinations', 'daneResolver']);
  const daneResolver = r.string(o, 'daneResolver', path, '');
  const resolver = daneResolver ? resolverProblem(daneResolver) : undefined;
  if (resolver) r.fail(join(path, 'daneResolver'), resolver);
  const destinations: TlsDestinationPolicy[] = [];
  const seen = new Set<string>();
  r.list(o, 'destinations', path).forEach((item, i) => {
    const p = `${path}.destinations[${i}]`;
    const d = r.object(item, p, ['domain', 'policy']);
    const domain = r.string(d, 'domain', p, '', true).toLowerCase();
    if (domain) {
      const problem = domainProblem(domain.startsWith('*.') ? domain.slice(2) : domain);
      if (problem) r.fail(join(p, 'domain'), problem);
      if (seen.has(domain)) r.fail(join(p, 'domain'), `${domain} is listed twice`);
      seen.add(domain);
    }
    if (d.policy === undefined || d.policy === null) r.fail(join(p, 'policy'), 'is required');
    destinations.push({ domain, policy: r.oneOf(d, 'policy', p, TLS_POLICIES, 'verify') });
  });
  return { default: r.oneOf(o, 'default', path, TLS_POLICIES, 'opportunistic'), destinations, daneResolver };
}

function rateLimit(r: FieldReader, raw: unknown, path: string): RateLimitConfig {
  const o = r.object(raw, path, [
    'name',
    'match',
    'rate',
    'burst',
    'maxConnections',
    'maxMessagesPerConnection',
    'onExceed',
    'share',
    'pool',
  ]);
  const m = r.object(o.match, join(path, 'match'), [
    'senderDomains',
    'recipientDomains',
    'senderAddresses',
    'recipientMXHosts',
  ]);
  const mp = join(path, 'match');
  const wildcardDomain = (text: string) => domainProblem(text.startsWith('*.') ? text.slice(2) : text);
  const limit: RateLimitConfig = {
    name: r.string(o, 'name', path, '', true),
    match: {
      senderDomains: r.stringList(m, 'senderDomains', mp, wildcardDomain),
      recipientDomains: r.stringList(m, 'recipientDomains', mp, wildcardDomain),
      senderAddresses: r.stringList(m, 'senderAddresses', mp),
      recipientMXHosts: r.stringList(m, 'recipientMXHosts', mp, wildcardDomain),
    },
    burst: 1,
    onExceed: r.oneOf(o, 'onExceed', path, ['defer', 'reject'], 'defer'),
    share: fraction(r, o, 'share', path, 1),
  };
  if (o.maxConnections !== undefined)
    limit.maxConnections = r.integer(o, 'maxConnections', path, 1, 1, 10000);
  if (o.maxMessagesPerConnection !== undefined) {
    limit.maxMessagesPerConnection = r.integer(o, 'maxMessagesPerConnection', path, 1, 1, 1e6);
  }
  if (o.rate !== undefined && o.rate !== null) {
    const rate = r.object(o.rate, join(path, 'rate'), ['messages', 'per']);
    const messages = r.integer(rate, 'messages', join(path, 'rate'), 1, 1, 1e9);
    limit.rate = {
      messages,
      per: r.oneOf(rate, 'per', join(path, 'rate'), ['second', 'minute', 'hour', 'day'], 'second'),
    };
    limit.burst = r.integer(o, 'burst', path, messages, 1, 1e9);
  } else if (limit.maxConnections === undefined && limit.maxMessagesPerConnection === undefined) {
    r.fail(join(path, 'rate'), 'is required unless maxConnections or maxMessagesPerConnection is set');
  } else if (o.burst !== undefined) {
    r.fail(join(path, 'burst'), 'needs a rate');
  }
  if (limit.onExceed === 'reject' && !limit.rate) r.fail(join(path, 'onExceed'), 'reject needs a rate');
  if (o.pool !== undefined && o.pool !== null) limit.pool = poolNumbers(r, o.pool, join(path, 'pool'), limit);
  // Reject is decided at RCPT TO, before any MX lookup; an MX-rollup match can only be known at
  // delivery, so the combination could never take effect.
  if (limit.onExceed === 'reject' && limit.match.recipientMXHosts?.length) {
    r.fail(
      join(path, 'onExceed'),
      'reject cannot be combined with match.recipientMXHosts (MX hosts are known only at delivery)',
    );
  }
  return limit;
}

/** A limit's pool-wide numbers; each needs its share in the limit (what decides while the store is down). */
function poolNumbers(r: FieldReader, raw: unknown, pp: string, limit: RateLimitConfig): PoolRate {
  const pool = r.object(raw, pp, ['rate', 'burst', 'maxConnections']);
  const numbers: PoolRate = {};
  if (pool.rate !== undefined && pool.rate !== null) {
    const rate = r.object(pool.rate, join(pp, 'rate'), ['messages', 'per']);
    const messages = r.integer(rate, 'messages', join(pp, 'rate'), 1, 1, 1e9);
    numbers.rate = {
      messages,
      per: r.oneOf(rate, 'per', join(pp, 'rate'), ['second', 'minute', 'hour', 'day'], 'second'),
    };
    numbers.burst = r.integer(pool, 'burst', pp, messages, 1, 1e9);
    // The pool numbers replace the share's rate; without one there is nothing to fall back to.
    if (!limit.rate) r.fail(pp, 'needs a rate (the share enforced while the store is down)');
  } else if (pool.burst !== undefined) r.fail(join(pp, 'burst'), 'needs a rate');
  if (pool.maxConnections !== undefined) {
    numbers.maxConnections = r.integer(pool, 'maxConnections', pp, 1, 1, 10000);
    if (limit.maxConnections === undefined)
      r.fail(pp, "maxConnections needs the limit's maxConnections (the share used while the store is down)");
  }
  if (!numbers.rate && numbers.maxConnections === undefined) r.fail(pp, 'needs a rate or maxConnections');
  return numbers;
}

/** A number in (0, 1]: a share of a Pool-scoped limit. */
function fraction(r: FieldReader, o: Obj, key: string, path: string, fallback: number): number {
  const value = o[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    r.fail(join(path, key), 'must be a number greater than 0 and at most 1');
    return fallback;
  }
  return value;
}

/** A number in [min, max]. */
function numberIn(
  r: FieldReader,
  o: Obj,
  key: string,
  path: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = o[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    r.fail(join(path, key), `must be a number ${min}-${max}`);
    return fallback;
  }
  return value;
}

function adaptiveBackoff(r: FieldReader, raw: unknown): AdaptiveBackoffConfig {
  const path = 'adaptiveBackoff';
  const D = DEFAULTS.adaptiveBackoff;
  const o = r.object(raw, path, [
    'enabled',
    'throttlePatterns',
    'decrease',
    'increase',
    'minFactor',
    'successesPerStep',
    'hold',
  ]);
  const patternProblem = (text: string) => {
    try {
      new RegExp(text, 'i');
      return undefined;
    } catch {
      return `${JSON.stringify(text)} is not a regular expression`;
    }
  };
  return {
    enabled: r.boolean(o, 'enabled', path, true),
    throttlePatterns:
      o.throttlePatterns === undefined || o.throttlePatterns === null
        ? [...D.throttlePatterns]
        : r.stringList(o, 'throttlePatterns', path, patternProblem),
    decrease: numberIn(r, o, 'decrease', path, D.decrease, 0.01, 0.99),
    increase: numberIn(r, o, 'increase', path, D.increase, 1.01, 100),
    minFactor: numberIn(r, o, 'minFactor', path, D.minFactor, 0.0001, 1),
    successesPerStep: r.integer(o, 'successesPerStep', path, D.successesPerStep, 1, 1e6),
    hold: r.duration(o, 'hold', path, D.hold),
  };
}

function tlsReports(r: FieldReader, raw: unknown, path: string): TlsReportsConfig {
  const o = r.object(raw, path, ['organizationName', 'from', 'contactInfo']);
  const from = r.string(o, 'from', path, '', true);
  if (from && !/^[^@\s<>]+@[^@\s<>]+$/.test(from))
    r.fail(join(path, 'from'), 'must be an address local@domain');
  return {
    organizationName: r.string(o, 'organizationName', path, '', true),
    from,
    contactInfo: r.string(o, 'contactInfo', path, '') || from,
  };
}

function resolverProblem(text: string): string | undefined {
  if (isIP(text) !== 0) return undefined;
  const match = /^(?:\[([0-9a-f:.]+)\]|([0-9.]+)):(\d{1,5})$/i.exec(text);
  const ip = match?.[1] ?? match?.[2] ?? '';
  if (isIP(ip) === 0 || Number(match?.[3]) > 65535)
    return `${JSON.stringify(text)} is not ip, ip:port or [ipv6]:port`;
  return undefined;
}

function checkPortClash(r: FieldReader, config: RelayConfig): void {
  const used = new Map<string, string>();
  const entries: [string, { enabled: boolean; port: number }][] = [
    ['listeners.smtp', config.listeners.smtp],
    ['listeners.submission', config.listeners.submission],
    ['listeners.smtps', config.listeners.smtps],
    ['http', { enabled: true, port: config.http.port }],
    ['handoff', { enabled: config.handoff !== undefined, port: config.handoff?.port ?? 0 }],
    [
      'returnPath.listener',
      { enabled: config.returnPath?.listener.enabled ?? false, port: config.returnPath?.listener.port ?? 0 },
    ],
  ];
  for (const [path, l] of entries) {
    if (!l.enabled || l.port === 0) continue;
    const other = used.get(String(l.port));
    if (other) r.fail(`${path}.port`, `${l.port} is already used by ${other}`);
    used.set(String(l.port), path);
  }
}

export type { Obj };

function adminTokens(r: FieldReader, h: Obj): AdminTokenConfig[] {
  const tokens: AdminTokenConfig[] = [];
  const seen = new Set<string>();
  r.list(h, 'tokens', 'http').forEach((item, i) => {
    const path = `http.tokens[${i}]`;
    const t = r.object(item, path, ['name', 'role', 'file']);
    const name = r.string(t, 'name', path, '', true);
    if (name && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name))
      r.fail(join(path, 'name'), 'letters, digits, ".", "_" and "-" only, at most 63');
    if (seen.has(name)) r.fail(join(path, 'name'), `${name} is listed twice`);
    seen.add(name);
    if (t.role === undefined || t.role === null) r.fail(join(path, 'role'), 'is required');
    tokens.push({
      name,
      role: r.oneOf(t, 'role', path, ['read', 'admin'], 'read'),
      file: r.string(t, 'file', path, '', true),
    });
  });
  return tokens;
}
