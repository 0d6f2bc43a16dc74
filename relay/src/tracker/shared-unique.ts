// The tracker's connection to the pool's shared store (spec.sharedState, the relays' Valkey/Redis):
// one SET NX PX per open, under the pool's key prefix, to decide unique opens across the tracker
// pods (unique.ts). Fails fast while the store is down (no offline queue, a short command
// timeout): the pixel never waits, and the pod decides on its own memory, counted.
import { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { SHARED_UNIQUE_TTL_MS, type StoreAnswer, type UniqueStore } from './unique.ts';

interface SharedUniqueStore {
  set: UniqueStore;
  close(): void;
}

/** The store key of a message's first open by a reader class (the message id last: it may hold any character). */
function uniqueOpenKey(prefix: string, reader: string, domain: string, messageId: string): string {
  return `${prefix}unique-open:${reader}:${domain}:${messageId}`;
}

export function sharedUniqueStore(o: {
  url: string;
  keyPrefix: string;
  password: string | undefined;
  registry: Registry;
  log: (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;
}): SharedUniqueStore {
  const redis = new Redis(o.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 2000),
    connectTimeout: 2000,
    commandTimeout: 1000,
    ...(o.password ? { password: o.password } : {}),
  });
  let up = false;
  redis.on('ready', () => {
    up = true;
    o.log('info', 'shared state store connected', { url: o.url });
  });
  redis.on('close', () => {
    if (up) o.log('warn', 'shared state store unreachable, unique opens per pod', { url: o.url });
    up = false;
  });
  redis.on('error', () => undefined);
  redis.connect().catch(() => undefined);
  new Gauge({
    name: 'mailfleet_tracker_shared_state_up',
    help: 'Whether the pool’s shared store answers (1) or unique opens are decided per tracker pod (0).',
    registers: [o.registry],
    collect() {
      this.set(up ? 1 : 0);
    },
  });
  return {
    set: async (reader, domain, messageId): Promise<StoreAnswer> => {
      try {
        const key = uniqueOpenKey(o.keyPrefix, reader, domain, messageId);
        return (await redis.set(key, '1', 'PX', SHARED_UNIQUE_TTL_MS, 'NX')) === 'OK' ? 'first' : 'seen';
      } catch {
        return 'down';
      }
    },
    close: () => redis.disconnect(),
  };
}
