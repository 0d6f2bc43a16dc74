// Outbound SMTP through our own connection pools (smtp-pool.ts): one pool per smarthost or per MX
// address, reused across messages. Built from one settings object; replaced (not mutated) on reload.
import type { DeliveryConfig } from '../config/types.ts';
import type { NextHopDsn } from '../outcomes/dsn-params.ts';
import { routeDomain, type DnsClient } from './mx.ts';
import type { DkimKeyring } from './dkim.ts';
import type { LinkTracking, TrackingOutcome } from '../tracking/apply.ts';
import {
  isConnectionFailure,
  resultsFromError,
  resultsFromReply,
  resultsFromSuccess,
  type RecipientResult,
} from './results.ts';
import {
  SmtpPool,
  afterField,
  isSourceError,
  type ChunkedMessage,
  type MessageBody,
  type SessionInfo,
  type SmtpError,
} from './smtp-pool.ts';
import { poolKey, poolSettings, type Credentials, type ShapingPool } from './smtp-options.ts';
import {
  directTlsPlan,
  policyFor,
  type AppliedTlsPolicy,
  type TlsFailure,
  type TlsRequirement,
} from './tls-policy.ts';
import { stsPlan } from './mta-sts/policy.ts';
import { lookupDane } from './dane/lookup.ts';
import { hostTlsPlan } from './dane/plan.ts';
import type { SecureResolver } from './dane/resolver.ts';
import type { DaneExpectation } from './dane/tlsa.ts';
import { createHash } from 'node:crypto';
import { NO_POLICY, stsDescription, tlsaDescription, type PolicyDescription } from '../tlsrpt/describe.ts';
import type { TlsAttempt } from '../tlsrpt/tally.ts';
import type { StsDns, StsPolicies } from './mta-sts/policies.ts';
import { envelopesFor, type Envelope, type ReturnPaths } from '../return-path/envelopes.ts';

export type { Credentials } from './smtp-options.ts';

export interface DelivererSettings {
  delivery: DeliveryConfig;
  /** Smarthost AUTH credentials, read from delivery.smarthost.credentialsFile. */
  credentials?: Credentials;
  dns: DnsClient & StsDns;
  /** MTA-STS policies (kept across reloads); without it `mta-sts` destinations are opportunistic. */
  sts?: StsPolicies;
  /** The DNSSEC-validating resolver (delivery.tlsPolicy.daneResolver); without it no DANE. */
  dane?: SecureResolver;
  /** Told about TLS problems that do not stop the mail (MTA-STS testing mode, policy fetch failures). */
  onTlsReport?: (domain: string, failure: TlsFailure, detail: string) => void;
  /** Told the TLS result of every direct delivery session (TLS-RPT, RFC 8460). */
  onTlsAttempt?: (attempt: TlsAttempt) => void;
  /** Signs each outbound message of a sending domain with a key, at delivery (after any handoff). */
  dkim?: DkimKeyring;
  /** Told about every signing decision (metrics). */
  onDkim?: (domain: string | undefined) => void;
  /** Signed VERP envelope senders for the sending domains with a return path. */
  returnPaths?: ReturnPaths;
  /** Rewrites the HTML of tracking domains' mail, before DKIM signing (tracking/apply.ts). */
  tracking?: LinkTracking;
  onTracking?: (outcome: TrackingOutcome) => void;
}

export interface DeliveryRequest {
  from: string;
  /** The message's queue id: what a VERP return path names. */
  queueId?: string;
  recipients: string[];
  /** The message in memory, or (a big one) read in chunks from the spool as it is sent. */
  body: Buffer | ChunkedMessage;
  /** Recipient domain (direct mode); ignored in smarthost mode. */
  domain: string;
  /**
   * A RateLimit's connection settings: the message goes through pools of its own (keyed by the
   * shaping class) with at most these connections and messages per connection.
   */
  pool?: ShapingPool;
  /** RFC 3461 parameters for a next hop that advertises DSN. */
  dsn?: NextHopDsn;
}

export interface DeliveryReport {
  results: RecipientResult[];
  /** Host that answered, for the accounting log. */
  host: string;
  /** Direct delivery: the destination's TLS policy and whether the last connection tried met it. */
  tls?: TlsReport;
  /** After a transaction: whether the next hop listed DSN (took the RFC 3461 parameters). */
  nextHopDsn?: boolean;
}

export interface TlsReport {
  policy: AppliedTlsPolicy;
  result: 'success' | TlsFailure;
}

/** A request with the bytes to send: the message, after its DKIM-Signature field when signed. */
interface Outgoing extends DeliveryRequest {
  data: MessageBody;
}

/** What one connection attempt needs: the requirement and, for reports, the policy it came from. */
interface DirectTls {
  policy: AppliedTlsPolicy;
  requirement: TlsRequirement;
  reportOnly: boolean;
  dane?: DaneExpectation | undefined;
  /** How a TLS report names the policy (RFC 8460 §4.4). */
  description: PolicyDescription;
}

export class Deliverer {
  private readonly settings: DelivererSettings;
  /** Connection pools by "host:port" (and shaping class). */
  private readonly pools = new Map<string, SmtpPool>();
  /** Deliveries running now; a retired deliverer closes its pools when this reaches zero. */
  private inflight = 0;
  private retired = false;

  constructor(settings: DelivererSettings) {
    this.settings = settings;
  }

  async deliver(request: DeliveryRequest): Promise<DeliveryReport> {
    this.inflight++;
    try {
      // Link tracking rewrites the message before it goes out: it takes a chunked message whole
      // (a Buffer fallback). Otherwise a chunked message goes out chunk by chunk, DKIM-signed
      // from a first pass over its chunks (the header block kept, the body hashed).
      let data: MessageBody = request.body;
      let body = request.body;
      if (!Buffer.isBuffer(body) && this.settings.tracking) body = await body.whole();
      if (Buffer.isBuffer(body)) {
        if (this.settings.tracking) {
          const tracked = await this.settings.tracking.apply(body, request.from);
          this.settings.onTracking?.(tracked.outcome);
          body = tracked.body;
        }
        // The message goes out as it is stored, after its DKIM-Signature field if it is signed:
        // two buffers written one after the other, the message never copied behind the field.
        data = [body];
        if (this.settings.dkim) {
          const signed = this.settings.dkim.sign(body, request.from);
          this.settings.onDkim?.(signed.domain);
          if (signed.field) data = [signed.field, body];
        }
      } else if (this.settings.dkim?.signs()) {
        // Both passes read the spool record against its CRC-32: a record damaged before the
        // first fails here (SpoolDamage), one damaged between them fails as it is sent.
        const signed = await this.settings.dkim.signChunks(body, request.from);
        this.settings.onDkim?.(signed.domain);
        if (signed.field) data = afterField(signed.field, body);
      } else this.settings.onDkim?.(undefined);
      const outgoing: Outgoing = { ...request, body, data };
      const d = this.settings.delivery;
      if (d.mode === 'smarthost' && d.smarthost) {
        const s = d.smarthost;
        return await this.send(poolKey(`${s.host}:${s.port}`, request.pool), s.host, s.port, outgoing, {
          kind: 'smarthost',
        });
      }
      return await this.deliverDirect(outgoing);
    } finally {
      this.inflight--;
      if (this.retired && this.inflight === 0) this.closePools();
    }
  }

  /** Stop being used: close pools once the deliveries in flight are done. */
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) this.closePools();
  }

  close(): void {
    this.closePools();
  }

  private async deliverDirect(request: Outgoing): Promise<DeliveryReport> {
    const route = await routeDomain(request.domain, this.settings.dns);
    if (!route.ok) return { results: resultsFromReply(request.recipients, route.reply), host: '' };
    const d = this.settings.delivery;
    const configured = d.tlsPolicy ? policyFor(request.domain, d.tlsPolicy) : 'opportunistic';
    const names = route.hosts.map((h) => h.name);
    let sts;
    let stsPolicy;
    if ((configured === 'mta-sts' || configured === 'dane-mta-sts') && this.settings.sts) {
      const found = await this.settings.sts.lookup(request.domain, this.settings.dns);
      if (found.failure) this.settings.onTlsReport?.(request.domain, found.failure, found.detail ?? '');
      stsPolicy = found.policy;
      sts = stsPlan(found.policy, names);
    }
    const plan = directTlsPlan(configured, sts, names);
    for (const host of plan.mismatched)
      this.settings.onTlsReport?.(
        request.domain,
        'validation-failure',
        `${host} is not in the MTA-STS policy`,
      );
    const daneResolver =
      configured === 'dane' || configured === 'dane-mta-sts' ? this.settings.dane : undefined;
    const dane = daneResolver ? await lookupDane(daneResolver, request.domain, names) : undefined;
    const hostPlan = hostTlsPlan(request.domain, names, plan, dane);
    for (const x of hostPlan.excluded)
      this.settings.onTlsReport?.(request.domain, x.failure, `${x.name}: ${x.detail}`);
    if (hostPlan.hosts.length === 0) {
      // RFC 8461 §5: no MX host the enforced policy lists; RFC 7672 §2.2: none whose DANE
      // lookups succeeded. Either way none may get the mail.
      const failedDane = hostPlan.excluded[0];
      const tlsAttempt = failedDane
        ? { policy: 'dane' as const, result: 'dnssec-invalid' as const, ...NO_POLICY }
        : {
            policy: plan.applied,
            result: 'validation-failure' as const,
            ...(stsPolicy ? stsDescription(stsPolicy) : NO_POLICY),
          };
      this.settings.onTlsAttempt?.({
        domain: request.domain,
        mx: '',
        address: '',
        sendingIp: '',
        ...tlsAttempt,
      });
      const reply = failedDane
        ? `ETLSPOLICY DANE: the DNSSEC lookups of every MX host of ${request.domain} failed (dnssec-invalid)`
        : `ETLSPOLICY MTA-STS: no MX host of ${request.domain} is in its policy (validation-failure)`;
      return {
        results: resultsFromReply(request.recipients, reply),
        host: '',
        tls: failedDane
          ? { policy: 'dane', result: 'dnssec-invalid' }
          : { policy: plan.applied, result: 'validation-failure' },
      };
    }
    let last: DeliveryReport | undefined;
    // RFC 5321 §5.1: on a connection failure try the next address, then the next MX. A host that
    // fails the TLS policy counts as one: the next may meet it (RFC 8461 §5), else the mail waits.
    for (const hostTls of hostPlan.hosts) {
      const tls: DirectTls = {
        ...hostTls,
        description: hostTls.dane
          ? tlsaDescription(hostTls.name, hostTls.dane.records)
          : stsPolicy && (hostTls.policy === 'mta-sts' || hostTls.policy === 'mta-sts-testing')
            ? stsDescription(stsPolicy)
            : NO_POLICY,
      };
      const addresses =
        hostTls.addresses ?? route.hosts.find((h) => h.name === hostTls.name)?.addresses ?? [];
      for (const address of addresses) {
        const port = d.directPort;
        // Connections are judged once, when opened: a pool serves one requirement and MX name
        // (and, for DANE, one set of TLSA records).
        const base =
          tls.requirement === 'none'
            ? `${address}:${port}`
            : `${address}:${port}|tls=${tls.requirement}${tls.reportOnly ? '-testing' : ''}:${hostTls.name}${daneKey(tls.dane)}`;
        const key = poolKey(base, request.pool);
        const report = await this.send(key, address, port, request, {
          kind: 'direct',
          servername: hostTls.name,
          tls,
        });
        if (!report.connectionFailed) return report;
        last = report;
      }
    }
    return (
      last ?? { results: resultsFromReply(request.recipients, '451 4.4.1 no MX host reachable'), host: '' }
    );
  }

  /**
   * One SMTP transaction per envelope (one, unless the sending domain has a VERP return path).
   * Only a failure before any transaction went through may move on to the next MX host: after
   * that, the recipients already accepted there must not be sent twice.
   */
  private async send(
    key: string,
    host: string,
    port: number,
    request: Outgoing,
    target: { kind: 'smarthost' } | { kind: 'direct'; servername: string; tls: DirectTls },
  ): Promise<DeliveryReport & { connectionFailed?: boolean }> {
    const pool = this.pool(key, host, port, target, request.pool);
    const label = target.kind === 'direct' ? `${target.servername}[${host}]:${port}` : `${host}:${port}`;
    const envelopes = envelopesFor(
      request.from,
      request.queueId,
      request.recipients,
      this.settings.returnPaths,
    );
    let combined: (DeliveryReport & { connectionFailed?: boolean }) | undefined;
    for (const envelope of envelopes) {
      const report = await this.transaction(
        pool,
        label,
        host,
        { ...envelope, domain: request.domain },
        request.data,
        target,
        request.dsn,
      );
      if (!combined) {
        if (report.connectionFailed && envelopes.length > 1) {
          const reply = report.results[0]?.reply ?? '451 4.4.1 connection failed';
          return { ...report, results: resultsFromReply(request.recipients, reply) };
        }
        combined = report;
      } else {
        combined = {
          ...combined,
          results: [...combined.results, ...report.results],
          connectionFailed: false,
        };
      }
    }
    return combined!;
  }

  private async transaction(
    pool: SmtpPool,
    label: string,
    host: string,
    envelope: Envelope & { domain: string },
    data: MessageBody,
    target: { kind: 'smarthost' } | { kind: 'direct'; servername: string; tls: DirectTls },
    dsn: NextHopDsn | undefined,
  ): Promise<DeliveryReport & { connectionFailed?: boolean }> {
    const policy = target.kind === 'direct' ? target.tls.policy : 'smarthost';
    const tlsReport = (result: TlsReport['result']) => ({ tls: { policy, result } });
    const request = { ...envelope, data };
    try {
      // Keyed by recipient, so a VERP transaction of one recipient still carries its own parameters.
      const info = await pool.send(request.from, request.recipients, request.data, dsn);
      if (info.tlsFailure && target.kind === 'direct')
        this.settings.onTlsReport?.(
          request.domain,
          info.tlsFailure,
          `${label}: delivered anyway (MTA-STS testing)`,
        );
      if (target.kind === 'direct')
        this.tlsAttempt(request.domain, host, target, info.tlsFailure ?? 'success', info);
      return {
        results: resultsFromSuccess(request.recipients, info),
        host: label,
        nextHopDsn: info.dsnListed === true,
        ...tlsReport(info.tlsFailure ?? 'success'),
      };
    } catch (err) {
      // The message could not be read whole (damaged: quarantined by the spool): no other host
      // or envelope gets it either.
      if (isSourceError(err)) throw err;
      const e = err as SmtpError & { tlsFailure?: TlsFailure } & SessionInfo;
      const connectionFailed = isConnectionFailure(e);
      // A session that got an SMTP reply to mail had passed its TLS check; one that never got
      // that far says nothing about TLS unless the check is what stopped it.
      const tlsResult = e.tlsFailure ?? (connectionFailed ? undefined : 'success');
      if (tlsResult && target.kind === 'direct') this.tlsAttempt(request.domain, host, target, tlsResult, e);
      return {
        results: resultsFromError(request.recipients, e),
        host: label,
        connectionFailed,
        ...(tlsResult ? tlsReport(tlsResult) : {}),
      };
    }
  }

  private tlsAttempt(
    domain: string,
    address: string,
    target: { servername: string; tls: DirectTls },
    result: TlsReport['result'],
    session: SessionInfo,
  ): void {
    // RFC 8460 §4: sessions are counted; a reused session's later transactions are not.
    if (session.firstOfSession === false) return;
    this.settings.onTlsAttempt?.({
      domain,
      policy: target.tls.policy,
      result,
      mx: target.servername,
      address,
      sendingIp: session.localAddress ?? '',
      ...target.tls.description,
    });
  }

  private pool(
    key: string,
    host: string,
    port: number,
    target: { kind: 'smarthost' } | { kind: 'direct'; servername: string; tls: DirectTls },
    shaping?: ShapingPool,
  ): SmtpPool {
    const existing = this.pools.get(key);
    if (existing) return existing;
    const { delivery, credentials } = this.settings;
    const pool = new SmtpPool(
      poolSettings({
        delivery,
        credentials,
        host,
        port,
        shaping,
        ...(target.kind === 'direct'
          ? {
              kind: 'direct',
              servername: target.servername,
              tlsRequirement: target.tls.requirement,
              tlsReportOnly: target.tls.reportOnly,
              tlsDane: target.tls.dane,
            }
          : { kind: 'smarthost' }),
      }),
    );
    this.pools.set(key, pool);
    return pool;
  }

  private closePools(): void {
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }
}

/** Distinguishes pools of one MX host judged against different TLSA records (after a rollover). */
function daneKey(dane: DaneExpectation | undefined): string {
  if (!dane) return '';
  const h = createHash('sha256');
  for (const r of dane.records)
    h.update(`${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')};`);
  h.update(dane.names.join(','));
  return `:${h.digest('hex').slice(0, 16)}`;
}
