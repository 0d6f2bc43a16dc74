// The pool's TLS-RPT counts in the shared store: one hash per UTC day whose fields are attempt
// keys (tlsrpt/tally.ts) and values their counts, so every relay adds to the same day; once the
// day is over the first relay to claim it sends the reports and the others leave them alone.
// A count the store does not take stays in the relay's own tally and is reported by that relay.
import type { Redis } from 'ioredis';
import { attemptKey, attemptOfKey, type TlsAttempt } from '../tlsrpt/tally.ts';

/** Long enough for a day to be reported after a pool-wide outage of a day or two. */
const KEEP_SECONDS = 4 * 86400;

/** What the reporter needs from the pool's store (rejects when the store does not answer). */
export interface PoolTlsCounts {
  add(day: string, attempt: TlsAttempt): Promise<void>;
  /** True for the one relay of the pool that is to send the day's reports. */
  claim(day: string, instance: string): Promise<boolean>;
  read(day: string): Promise<[TlsAttempt, number][]>;
}

export class SharedTlsCounts implements PoolTlsCounts {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(o: { redis: Redis; keyPrefix: string }) {
    this.redis = o.redis;
    this.prefix = `${o.keyPrefix}tlsrpt:`;
  }

  async add(day: string, attempt: TlsAttempt): Promise<void> {
    const key = `${this.prefix}${day}`;
    await this.redis.multi().hincrby(key, attemptKey(attempt), 1).expire(key, KEEP_SECONDS).exec();
  }

  async claim(day: string, instance: string): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}${day}:sender`, instance, 'EX', KEEP_SECONDS, 'NX')) === 'OK';
  }

  async read(day: string): Promise<[TlsAttempt, number][]> {
    const fields = await this.redis.hgetall(`${this.prefix}${day}`);
    return Object.entries(fields).map(([key, n]) => [attemptOfKey(key), Number(n)]);
  }
}
