// The pool's shared state store (Valkey/Redis through ioredis): two connections (commands, and
// the blocking stream read), their health as metrics, and what is shared over them (the
// suppression list, suppression-sync.ts; pool-wide RateLimits, rate-limits.ts and connection-leases.ts). Commands fail fast while the store is down (no offline
// queue): callers decide locally and keep what must reach the store in their own durable outbox.
import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SharedStateConfig } from '../config/types.ts';
import type { SuppressionList } from '../suppression/list.ts';
import { SuppressionSync } from './suppression-sync.ts';
import { SharedRateLimits } from './rate-limits.ts';
import { SharedConnectionLeases } from './connection-leases.ts';
import { SharedStsPolicies } from './sts-policies.ts';
import { SharedTlsCounts } from './tls-reports.ts';

export interface SharedStateOptions {
  config: SharedStateConfig;
  password: string | undefined;
  instance: string;
  list: SuppressionList;
  outboxFile: string;
  registry: Registry;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
}

/** Reconnect delay: grows to 2 s, so a store back after a restart is found within seconds. */
const retryStrategy = (attempt: number) => Math.min(100 * attempt, 2000);

export class SharedState {
  readonly suppression: SuppressionSync;
  /** Pool-wide RateLimits decided in the store (rate-limits.ts). */
  readonly rateLimits: SharedRateLimits;
  /** Pool-wide connection caps leased in the store (connection-leases.ts). */
  readonly connectionLeases: SharedConnectionLeases;
  /** The pool's TLS-RPT counts (tls-reports.ts). */
  readonly tlsCounts: SharedTlsCounts;
  /** The pool's MTA-STS policies (sts-policies.ts). */
  readonly stsPolicies: SharedStsPolicies;
  private readonly redis: Redis;
  private readonly reader: Redis;
  /** Whether the command connection is ready now. */
  up = false;

  constructor(o: SharedStateOptions) {
    const connection = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy,
      connectTimeout: 2000,
      ...(o.password ? { password: o.password } : {}),
    };
    this.redis = new Redis(o.config.url, connection);
    this.reader = new Redis(o.config.url, connection);
    const p = 'mailfleet_relay_shared_state_';
    const registers = [o.registry];
    const failures = new Counter({
      name: `${p}errors_total`,
      help: 'Shared store operations that failed (the relay went on with local state), by operation.',
      labelNames: ['operation'],
      registers,
    });
    this.suppression = new SuppressionSync({
      list: o.list,
      redis: this.redis,
      reader: this.reader,
      keyPrefix: o.config.keyPrefix,
      instance: o.instance,
      outboxFile: o.outboxFile,
      log: o.log,
      failed: (operation) => failures.inc({ operation }),
    });
    const isUp = () => this.up;
    this.tlsCounts = new SharedTlsCounts({ redis: this.redis, keyPrefix: o.config.keyPrefix });
    this.stsPolicies = new SharedStsPolicies({ redis: this.redis, keyPrefix: o.config.keyPrefix });
    this.rateLimits = new SharedRateLimits({
      redis: this.redis,
      keyPrefix: o.config.keyPrefix,
      connected: isUp,
      registry: o.registry,
    });
    this.connectionLeases = new SharedConnectionLeases({
      redis: this.redis,
      keyPrefix: o.config.keyPrefix,
      instance: o.instance,
      connected: isUp,
      registry: o.registry,
    });
    new Gauge({
      name: `${p}up`,
      help: 'Whether the pool’s shared state store answers (1) or the relay runs on local state (0).',
      registers,
      aggregator: 'min',
      collect() {
        this.set(isUp() ? 1 : 0);
      },
    });
    const sync = this.suppression;
    new Gauge({
      name: `${p}outbox_changes`,
      help: 'Suppression changes waiting in the durable outbox for the shared store to answer.',
      registers,
      collect() {
        this.set(sync.pending);
      },
    });
    this.redis.on('ready', () => {
      this.up = true;
      o.log('info', 'shared state store connected', { url: o.config.url });
      this.suppression.connected();
    });
    this.redis.on('close', () => {
      if (this.up)
        o.log('warn', 'shared state store unreachable, running on local state', { url: o.config.url });
      this.up = false;
    });
    // Connection errors are reported by 'close' and the metric; ioredis retries by itself.
    this.redis.on('error', () => undefined);
    this.reader.on('error', () => undefined);
    this.reader.on('ready', () => this.suppression.connected());
  }

  /** Opens the outbox and starts connecting; resolves without waiting for the store. */
  async start(): Promise<void> {
    await this.suppression.open();
    this.redis.connect().catch(() => undefined);
    this.reader.connect().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    this.reader.disconnect();
    await this.suppression.close();
  }
}
