// The relay config a pool's relays run with, in the relay's own contract (RelayConfigInput).
// File paths are relative to the config file (the relay resolves them against its directory),
// so the same rendering works in the pod (/etc/mailfleet) and in a local copy of the volume.
import { createHash } from 'node:crypto';
import type { DefaultedRelayPool } from '../api/types.ts';
import type {
  OutboundTlsPolicy,
  RateLimitConfig,
  RelayConfigInput,
  SmarthostTls,
  SendingDomainConfig,
} from '../../../contract/config.ts';
import { spoolQuota } from './spool.ts';
import { quantity } from '../kube/diff.ts';
import { sharedStateConfig } from './shared-state.ts';
import { eventsConfig } from './events.ts';
import { intakeOpen } from './deletion.ts';
import { evacuationTarget } from './handoff-to.ts';
import type { RelayPool } from '../api/types.ts';
import {
  ADMIN_TOKEN_ROLES,
  HANDOFF_PORT,
  HANDOFF_SECRET_FILE,
  RETURN_PATH_KEY_FILE,
  RETURN_PATH_PORT,
  HTTP_PORT,
  SPOOL_DIR,
  TRACKING_KEY_FILE,
  adminTokenFile,
  names,
  quantityBytes,
  relaySecretKeys,
} from './meta.ts';

export type BoundDomain = {
  domain: string;
  suspended: boolean;
  dkim?: { selector: string; algorithm: 'rsa-sha256' | 'ed25519-sha256' };
  /** Present when the domain tracks opens or clicks. */
  tracking?: { opens: boolean; clicks: boolean; host: string };
  /** spec.returnPath: the domain's mail leaves with signed VERP senders on it. */
  returnPath?: string;
};

export type RenderedLimit = Omit<RateLimitConfig, 'burst' | 'rate'> & {
  rate?: RateLimitConfig['rate'];
  burst?: number;
};

export type RelayConfigOptions = {
  /** The pool with schema defaults applied. */
  pool: DefaultedRelayPool;
  domains: BoundDomain[];
  rateLimits: RenderedLimit[];
  /** The relay Secret carries a users file (auth enabled). */
  hasUsers: boolean;
  /** The relay Secret carries smarthost credentials. */
  hasSmarthostCredentials: boolean;
  /** The pool spec.deletionHandOffTo names, when it exists (handoff-to.ts). */
  handOffTarget?: RelayPool;
};

const SMARTHOST_TLS: Record<string, SmarthostTls> = {
  Implicit: 'implicit',
  StartTLSRequired: 'starttls-required',
  StartTLSOpportunistic: 'starttls-opportunistic',
};

const TLS_POLICY: Record<string, OutboundTlsPolicy> = {
  DANEAndMTASTS: 'dane-mta-sts',
  DANE: 'dane',
  MTASTS: 'mta-sts',
  Opportunistic: 'opportunistic',
  Encrypt: 'encrypt',
  Verify: 'verify',
};

export function renderRelayConfig(options: RelayConfigOptions): RelayConfigInput {
  const spec = options.pool.spec;
  const { smtp, submission, smtps } = spec.listeners;
  const config: RelayConfigInput = {
    listeners: {
      smtp: { enabled: smtp.enabled, port: smtp.port },
      submission: { enabled: submission.enabled, port: submission.port },
      smtps: { enabled: smtps.enabled, port: smtps.port },
    },
    auth: { mode: spec.auth.mode },
    allowedNetworks: [...(spec.allowedNetworks ?? [])],
    sendingDomains: options.domains.map((d) => {
      const entry: SendingDomainConfig = { domain: d.domain, suspended: d.suspended };
      if (d.dkim) {
        entry.dkim = { ...d.dkim, keyFile: relaySecretKeys.dkim(d.domain, d.dkim.selector) };
      }
      if (d.tracking) entry.tracking = { ...d.tracking };
      if (d.returnPath) entry.returnPath = d.returnPath;
      return entry;
    }),
    delivery: {
      mode: spec.delivery.mode === 'Smarthost' ? 'smarthost' : 'direct',
      dns: { servers: [...(spec.delivery.resolvers ?? [])] },
      tlsPolicy: {
        default: TLS_POLICY[spec.delivery.tlsPolicy.default] ?? 'dane-mta-sts',
        destinations: (spec.delivery.tlsPolicy.destinations ?? []).map((d) => ({
          domain: d.domain,
          policy: TLS_POLICY[d.policy] ?? 'verify',
        })),
        daneResolver: spec.delivery.tlsPolicy.daneResolver ?? '',
      },
    },
    retry: { ...spec.retry },
    limits: {
      maxMessageSize: quantityBytes(spec.limits.maxMessageSize),
      maxRecipients: spec.limits.maxRecipients,
      maxConnections: spec.limits.maxConnections,
      maxConnectionsPerClient: spec.limits.maxConnectionsPerClient,
    },
    // Shares of Pool-scoped limits are already applied to rate, burst and maxConnections (see
    // share.ts), so the relay's own `share` stays at its default of 1. A limit without a rate is a
    // pure connection cap, which the relay contract allows.
    rateLimits: options.rateLimits.map(({ burst, ...limit }) =>
      limit.rate ? { ...limit, burst: burst ?? limit.rate.messages } : limit,
    ),
    spool: spoolConfig(options.pool),
    http: {
      port: HTTP_PORT,
      tokens: ADMIN_TOKEN_ROLES.map((role) => ({ name: role, role, file: adminTokenFile(role) })),
    },
    drainTimeout: spec.drainTimeout,
    workers: relayWorkers(spec.resources),
    // Every pool: a drained relay (scale-down, rollout, eviction) hands its queue to its peers,
    // found through the headless Service (which lists every relay of the pool; the relay skips
    // itself and draining peers). Search domains complete the name inside the pod.
    handoff: {
      port: HANDOFF_PORT,
      secretFile: HANDOFF_SECRET_FILE,
      service: `${names.headless(options.pool.metadata.name ?? '')}.${options.pool.metadata.namespace ?? ''}.svc`,
    },
  };
  // Only when closed, so a live pool's ConfigMap stays as it was (the relay's default is open).
  if (!intakeOpen(options.pool)) config.intake = { open: false };
  const evacuateTo = evacuationTarget(options.pool, options.handOffTarget);
  if (evacuateTo && config.handoff) config.handoff.evacuateTo = evacuateTo;
  if (options.domains.some((d) => d.tracking)) config.tracking = { keyFile: TRACKING_KEY_FILE };
  const sharedState = sharedStateConfig(options.pool);
  if (sharedState) config.sharedState = sharedState;
  const events = eventsConfig(options.pool);
  if (events) config.events = events;
  if (options.domains.some((d) => d.returnPath))
    config.returnPath = { keyFile: RETURN_PATH_KEY_FILE, listener: { port: RETURN_PATH_PORT } };
  if (spec.tls) {
    config.tls = {
      certFile: 'tls/tls.crt',
      keyFile: 'tls/tls.key',
      minVersion: spec.tls.minVersion,
    };
  }
  if (options.hasUsers && config.auth) config.auth.usersFile = relaySecretKeys.users;
  if (spec.delivery.ehloName && config.delivery) config.delivery.ehloName = spec.delivery.ehloName;
  const reports = spec.delivery.tlsReports;
  if (reports && config.delivery)
    config.delivery.tlsReports = {
      organizationName: reports.organizationName,
      from: reports.from,
      contactInfo: reports.contactInfo || reports.from,
    };
  const smarthost = spec.delivery.smarthost;
  if (smarthost && config.delivery) {
    config.delivery.smarthost = {
      host: smarthost.host,
      port: smarthost.port,
      tls: SMARTHOST_TLS[smarthost.tls] ?? 'starttls-required',
    };
    if (options.hasSmarthostCredentials)
      config.delivery.smarthost.credentialsFile = relaySecretKeys.smarthost;
  }
  return config;
}

/** An emptyDir spool with a size limit: the relay counts the limit as its quota (spool.ts). */
function spoolConfig(pool: DefaultedRelayPool): NonNullable<RelayConfigInput['spool']> {
  const quota = spoolQuota(pool);
  if (!quota) return { dir: SPOOL_DIR };
  return { dir: SPOOL_DIR, maxBytes: quota.maxBytes, minFreeBytes: quota.minFreeBytes };
}

/**
 * A digest of the settings the relay reads only at start (listening sockets, TLS presence, spool,
 * HTTP and handoff ports, the events outbox). Stamped on the pod template, so only these changes roll the pods; everything else
 * (domains, DKIM keys, limits, users) the relay reloads from the mounted files.
 */
/**
 * Relay processes per pod (relay config `workers`): one per whole CPU of the container's CPU limit,
 * or of its request without a limit; one below a CPU (the default request is 250m). Each process
 * takes about 100 MiB more of the memory limit (docs/operator.md#sizing-relays).
 */
export function relayWorkers(
  resources: { requests?: Record<string, unknown>; limits?: Record<string, unknown> } | undefined,
): number {
  const cpu = quantity(resources?.limits?.cpu) ?? quantity(resources?.requests?.cpu) ?? 0;
  return Math.min(16, Math.max(1, Math.floor(cpu)));
}

export function restartChecksum(config: RelayConfigInput): string {
  const startOnly = {
    listeners: config.listeners,
    tls: config.tls ? { minVersion: config.tls.minVersion } : null,
    spool: config.spool,
    http: config.http,
    handoff: config.handoff ? { host: config.handoff.host, port: config.handoff.port } : null,
    // Only when set, so pools without events keep their checksum (no roll on upgrade).
    ...(config.events ? { events: { maxBytes: config.events.maxBytes } } : {}),
  };
  return createHash('sha256').update(JSON.stringify(startOnly)).digest('hex').slice(0, 16);
}
