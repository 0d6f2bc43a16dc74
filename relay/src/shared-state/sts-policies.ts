// The pool's MTA-STS policies in the shared store: one key per recipient domain holding the
// cached policy (delivery/mta-sts/store.ts codec), expiring when its max_age runs out, so a
// policy one relay fetched is in force in all of them (RFC 8461 §5.1 caching, done by the pool).
import type { Redis } from 'ioredis';
import { decodeCachedPolicy, encodeCachedPolicy, type StsPolicyStore } from '../delivery/mta-sts/store.ts';
import type { CachedPolicy } from '../delivery/mta-sts/policy.ts';

export class SharedStsPolicies implements StsPolicyStore {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly now: () => number;

  constructor(o: { redis: Redis; keyPrefix: string; now?: () => number }) {
    this.redis = o.redis;
    this.prefix = `${o.keyPrefix}mta-sts:`;
    this.now = o.now ?? Date.now;
  }

  async get(domain: string): Promise<CachedPolicy | undefined> {
    const value = await this.redis.get(`${this.prefix}${domain}`);
    return value === null ? undefined : decodeCachedPolicy(value);
  }

  async put(domain: string, cached: CachedPolicy): Promise<void> {
    const ttl = cached.expiresAt - this.now();
    if (ttl > 0) await this.redis.set(`${this.prefix}${domain}`, encodeCachedPolicy(cached), 'PX', ttl);
  }
}
