// Pool-wide connection caps (a RateLimit's pool maxConnections) in the shared store: every open
// connection to a limit destination holds a lease, a member of one sorted set per limit
// destination scored by its expiry on the store's clock. One Lua script drops expired leases,
// counts and adds atomically ("add if room"); a lease is refreshed every third of its lifetime
// while its connection is open and removed when it closes, so a relay killed with connections
// open frees its room within LEASE_TTL_MS.
//
// The store not answering is never "unlimited": the relay then opens connections up to its own
// share (the limit's maxConnections share), counting its leases itself, and says so in a metric.
// A lease granted that way is written to the store at its first refresh once the store answers,
// so the store counts every connection that is really open.
import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import type { ConnectionGate, ConnectionLease, ShapingPool } from '../delivery/smtp-options.ts';
import { leasedConnectionLimits, type ShapingClass } from '../shaping/plan.ts';
import { answerWithin } from './answer-within.ts';
import { LEASE_REPLY, LEASE_SCRIPT, WAITER_TTL_MS } from './lease-fairness.ts';

// KEYS: the lease's sorted sets. ARGV[1]: its member, ARGV[2]: its lifetime (ms). Moves its expiry
// on (adding it back if the store lost it: the connection is open, so it counts).
const REFRESH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
`;

/** One limit destination a connection counts against. */
export interface LeasedLimit {
  /** The limit destination's id ("limit\0destination"). */
  id: string;
  limit: string;
  destination: string;
  /** Connections the whole pool may have open to it. */
  poolMax: number;
  /** This relay's share of them: its cap while the store does not answer. */
  share: number;
}

/**
 * What the store answered for one lease; `yield`: room left to relays waiting below their fair
 * share (lease-fairness.ts); `unavailable`: down, failed or too slow.
 */
export type StoreAnswer = 'room' | 'full' | 'yield' | 'unavailable';

/**
 * Whether a connection may open: the store's answer while it gives one, else this relay's share
 * (`held`: the leases it holds per limit, in order). Pure.
 */
export function leaseDecision(
  answer: StoreAnswer,
  limits: readonly LeasedLimit[],
  held: readonly number[],
): 'store' | 'fallback' | 'wait' {
  if (answer === 'room') return 'store';
  if (answer === 'full' || answer === 'yield') return 'wait';
  return limits.every((l, i) => (held[i] ?? 0) < l.share) ? 'fallback' : 'wait';
}

/** What the scheduler needs from the pool's connection leases (a test may pass another implementation). */
export interface PoolConnectionLeases {
  /** Whether the store leases connections now; false: each relay's share caps them. */
  readonly available: boolean;
  gate(limits: readonly LeasedLimit[]): ConnectionGate;
}

/**
 * The connection settings of a class's own outbound pools. With pool-wide caps and a store, the
 * pool may open up to the pool's number, each connection after the gate gave it a lease. Pure.
 */
export function shapingPool(cls: ShapingClass, leases: PoolConnectionLeases | undefined): ShapingPool {
  const pool: ShapingPool = {
    key: cls.key,
    maxConnections: cls.maxConnections,
    maxMessages: cls.maxMessagesPerConnection,
  };
  const leased = leasedConnectionLimits(cls);
  if (!leases || leased.length === 0) return pool;
  const limits = leased.map((a) => ({
    id: a.id,
    limit: a.limit.name,
    destination: a.destination,
    poolMax: a.limit.poolMaxConnections!,
    share: a.limit.maxConnections!,
  }));
  return { ...pool, maxConnections: cls.poolMaxConnections, gate: leases.gate(limits) };
}

/**
 * How long a lease lives without a refresh: a relay killed with connections open frees their
 * room after this. Refreshed every third of it, so two refreshes may fail before it lapses.
 */
export const LEASE_TTL_MS = 15_000;
/**
 * A store slower than this counts as down for the decision: the share decides. Opening a
 * connection can wait (unlike an SMTP reply at RCPT TO), and a relay whose event loop is busy
 * would otherwise see its own lateness as the store's and open beyond the pool's cap.
 */
const DECISION_TIMEOUT_MS = 1000;
/** After a failed decision, the share decides for this long before the store is asked again. */
const RETRY_AFTER_FAILURE_MS = 1000;

interface LeaseRedis extends Redis {
  mailfleetLease(numKeys: number, ...args: (string | number)[]): Promise<number>;
  mailfleetLeaseRefresh(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

export interface SharedConnectionLeasesOptions {
  redis: Redis;
  keyPrefix: string;
  /** Names this relay's leases (the relay's random instance id), so they can be told apart. */
  instance: string;
  connected: () => boolean;
  registry: Registry;
  now?: () => number;
}

export class SharedConnectionLeases implements PoolConnectionLeases {
  private readonly redis: LeaseRedis;
  private readonly keyPrefix: string;
  private readonly instance: string;
  private readonly connected: () => boolean;
  private readonly now: () => number;
  /** Leases this relay holds per limit destination id (in the store or on its share). */
  private readonly held = new Map<string, number>();
  /** Numbers this relay's leases. */
  private seq = 0;
  /** Until when a failed decision keeps the relay on its shares. */
  private failedUntil = 0;
  private readonly decisions: Counter<'rate_limit' | 'decision'>;

  constructor(o: SharedConnectionLeasesOptions) {
    this.redis = o.redis as LeaseRedis;
    this.redis.defineCommand('mailfleetLease', { lua: LEASE_SCRIPT });
    this.redis.defineCommand('mailfleetLeaseRefresh', { lua: REFRESH_SCRIPT });
    this.keyPrefix = o.keyPrefix;
    this.instance = o.instance;
    this.connected = o.connected;
    this.now = o.now ?? Date.now;
    this.decisions = new Counter({
      name: 'mailfleet_relay_shared_connection_lease_decisions_total',
      help: 'Requests for a connection under a pool-wide connection cap, by decision: granted, full or yielded (room left to relays waiting below their fair share) in the shared store, or fallback (opened on this relay’s share because the store did not answer).',
      labelNames: ['rate_limit', 'decision'],
      registers: [o.registry],
    });
  }

  /** Whether decisions go to the store now; false: connections are capped by the shares. */
  get available(): boolean {
    return this.connected() && this.now() >= this.failedUntil;
  }

  key(limit: string, destination: string): string {
    return `${this.keyPrefix}connections:${limit}:${destination}`;
  }

  /** The gate a connection pool of these limit destinations asks before each new connection. */
  gate(limits: readonly LeasedLimit[]): ConnectionGate {
    return { acquire: () => this.acquire(limits), withdraw: () => this.withdraw(limits) };
  }

  private async acquire(limits: readonly LeasedLimit[]): Promise<ConnectionLease | undefined> {
    const keys = limits.map((l) => this.key(l.limit, l.destination));
    const member = `${this.instance}:${++this.seq}`;
    const { answer, late } = await this.ask(keys, member, limits);
    const decision = leaseDecision(
      answer,
      limits,
      limits.map((l) => this.held.get(l.id) ?? 0),
    );
    const label = decisionLabel(decision, answer);
    for (const l of limits) this.decisions.inc({ rate_limit: l.limit, decision: label });
    if (decision === 'wait') {
      // A store answering after the decision may still have added the lease: no connection holds
      // it, so it goes now rather than taking room from the pool until it lapses.
      void late?.then((a) => a === 'room' && this.remove(keys, member));
      return undefined;
    }
    for (const l of limits) this.held.set(l.id, (this.held.get(l.id) ?? 0) + 1);
    const refresh = setInterval(() => void this.refresh(keys, member), LEASE_TTL_MS / 3);
    refresh.unref();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        clearInterval(refresh);
        for (const l of limits) {
          const n = (this.held.get(l.id) ?? 1) - 1;
          if (n <= 0) this.held.delete(l.id);
          else this.held.set(l.id, n);
        }
        this.remove(keys, member);
      },
    };
  }

  /**
   * Takes this relay off the waiters of these limit destinations: without it, peers at their fair
   * share would leave room for it until its entry lapsed (WAITER_TTL_MS). Not answering, it lapses.
   */
  private withdraw(limits: readonly LeasedLimit[]): void {
    if (!this.connected()) return;
    for (const l of limits)
      this.redis.zrem(waitersKey(this.key(l.limit, l.destination)), this.instance).catch(() => undefined);
  }

  /** Takes a lease out of the store; not answering, it lapses there by itself. */
  private remove(keys: readonly string[], member: string): void {
    if (this.connected()) for (const key of keys) this.redis.zrem(key, member).catch(() => undefined);
  }

  /**
   * The store's answer, or `unavailable` (down, failed, or no answer within DECISION_TIMEOUT_MS);
   * `late`: the answer still to come after the decision went without it.
   */
  private async ask(
    keys: string[],
    member: string,
    limits: readonly LeasedLimit[],
  ): Promise<{ answer: StoreAnswer; late?: Promise<StoreAnswer> }> {
    if (!this.available) return { answer: 'unavailable' };
    const reply = this.redis
      .mailfleetLease(
        keys.length * 2,
        ...keys,
        ...keys.map(waitersKey),
        member,
        LEASE_TTL_MS,
        this.instance,
        WAITER_TTL_MS,
        ...limits.map((l) => l.poolMax),
      )
      .then(storeAnswer, () => 'unavailable' as const);
    const answer = await answerWithin(reply, DECISION_TIMEOUT_MS);
    if (answer !== 'late' && answer !== 'unavailable') return { answer };
    this.failedUntil = this.now() + RETRY_AFTER_FAILURE_MS;
    return answer === 'late' ? { answer: 'unavailable', late: reply } : { answer };
  }

  private async refresh(keys: string[], member: string): Promise<void> {
    if (!this.connected()) return;
    try {
      await this.redis.mailfleetLeaseRefresh(keys.length, ...keys, member, LEASE_TTL_MS);
    } catch {
      // The next refresh tries again; two may fail before the lease lapses.
    }
  }
}

/** The sorted set of relays waiting for room under a lease set. */
const waitersKey = (leases: string) => `${leases}:waiting`;

function storeAnswer(reply: number): StoreAnswer {
  if (reply === LEASE_REPLY.grant) return 'room';
  return reply === LEASE_REPLY.yield ? 'yield' : 'full';
}

/** The decisions metric's label. */
function decisionLabel(decision: 'store' | 'fallback' | 'wait', answer: StoreAnswer): string {
  if (decision === 'wait') return answer === 'yield' ? 'yielded' : 'full';
  return decision === 'store' ? 'granted' : 'fallback';
}
