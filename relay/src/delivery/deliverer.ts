// Outbound SMTP through our own connection pools (smtp-pool.ts): one pool per smarthost or per MX
// address, reused across messages. Built from one settings object; replaced (not mutated) on reload.
import type { DeliveryConfig } from '../config/types.ts';
import { routeDomain, type DnsClient } from './mx.ts';
import type { DkimKeyring } from './dkim.ts';
import {
  isConnectionFailure,
  resultsFromError,
  resultsFromReply,
  resultsFromSuccess,
  type RecipientResult,
} from './results.ts';
import { SmtpPool, type SmtpError } from './smtp-pool.ts';
import { poolKey, poolSettings, type Credentials, type ShapingPool } from './smtp-options.ts';

export type { Credentials } from './smtp-options.ts';

export interface DelivererSettings {
  delivery: DeliveryConfig;
  /** Smarthost AUTH credentials, read from delivery.smarthost.credentialsFile. */
  credentials?: Credentials;
  dns: DnsClient;
  /** Signs each outbound message of a sending domain with a key, at delivery (after any handoff). */
  dkim?: DkimKeyring;
  /** Told about every signing decision (metrics). */
  onDkim?: (domain: string | undefined) => void;
}

export interface DeliveryRequest {
  from: string;
  recipients: string[];
  body: Buffer;
  /** Recipient domain (direct mode); ignored in smarthost mode. */
  domain: string;
  /**
   * A RateLimit's connection settings: the message goes through pools of its own (keyed by the
   * shaping class) with at most these connections and messages per connection.
   */
  pool?: ShapingPool;
}

export interface DeliveryReport {
  results: RecipientResult[];
  /** Host that answered, for the accounting log. */
  host: string;
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
      if (this.settings.dkim) {
        const signed = this.settings.dkim.sign(request.body, request.from);
        this.settings.onDkim?.(signed.domain);
        request = { ...request, body: signed.body };
      }
      const d = this.settings.delivery;
      if (d.mode === 'smarthost' && d.smarthost) {
        const s = d.smarthost;
        return await this.send(
          poolKey(`${s.host}:${s.port}`, request.pool),
          s.host,
          s.port,
          request,
          'smarthost',
        );
      }
      return await this.deliverDirect(request);
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

  private async deliverDirect(request: DeliveryRequest): Promise<DeliveryReport> {
    const route = await routeDomain(request.domain, this.settings.dns);
    if (!route.ok) return { results: resultsFromReply(request.recipients, route.reply), host: '' };
    let last: DeliveryReport | undefined;
    // RFC 5321 §5.1: on a connection failure try the next address, then the next MX.
    for (const host of route.hosts) {
      for (const address of host.addresses) {
        const port = this.settings.delivery.directPort;
        const key = poolKey(`${address}:${port}`, request.pool);
        const report = await this.send(key, address, port, request, 'direct', host.name);
        if (!report.connectionFailed) return report;
        last = report;
      }
    }
    return (
      last ?? { results: resultsFromReply(request.recipients, '451 4.4.1 no MX host reachable'), host: '' }
    );
  }

  private async send(
    key: string,
    host: string,
    port: number,
    request: DeliveryRequest,
    kind: 'smarthost' | 'direct',
    servername?: string,
  ): Promise<DeliveryReport & { connectionFailed?: boolean }> {
    const pool = this.pool(key, host, port, kind, servername, request.pool);
    const label = servername ? `${servername}[${host}]:${port}` : `${host}:${port}`;
    try {
      const info = await pool.send(request.from, request.recipients, request.body);
      return { results: resultsFromSuccess(request.recipients, info), host: label };
    } catch (err) {
      const e = err as SmtpError;
      return {
        results: resultsFromError(request.recipients, e),
        host: label,
        connectionFailed: isConnectionFailure(e),
      };
    }
  }

  private pool(
    key: string,
    host: string,
    port: number,
    kind: 'smarthost' | 'direct',
    servername?: string,
    shaping?: ShapingPool,
  ): SmtpPool {
    const existing = this.pools.get(key);
    if (existing) return existing;
    const { delivery, credentials } = this.settings;
    const pool = new SmtpPool(poolSettings({ delivery, credentials, host, port, kind, servername, shaping }));
    this.pools.set(key, pool);
    return pool;
  }

  private closePools(): void {
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }
}
