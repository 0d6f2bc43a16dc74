// Pool-wide RateLimit benchmark: three relays of one pool, a Pool-scoped limit on one destination,
// mail submitted unevenly (relay a gets 3/4 of it). Measured at the upstream: the pool's delivered
// rate over the whole run as a share of the limit, with the static per-relay share (each relay
// enforces limit/3: the busiest relay is held to its third once the others run dry) and with the
// GCRA in a real redis-server (spec.sharedState). Decision latency: the relays' own histogram, and
// a loop of decisions against the store from this process (sequential, then 3 concurrent callers).
// Postfix has no pool-wide limit: three Postfix instances can only each be given a
// default_destination_rate_delay (whole seconds, so at most 1/s per destination each), which is
// the static share; they are run at that scale (pool limit 3/s) as the reference.
// Also pool-wide reject limits at RCPT TO (reject.ts) and pool-wide connection caps
// (connections.ts), each next to the static share and Postfix.
// Not a test: it asserts nothing.
//
// Usage: scripts/node24.sh node bench/pool-rate/run.ts [messages, default 400] [--postfix-messages 40]
//          [--only gcra,reject,connections] [--reject-limit 60] [--caps 2,4] [--connection-messages 200]
//          [--delay-ms 50]   (root: Postfix)
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import {
  freePort,
  relayConfig,
  startRelay,
  startScripted,
  waitFor,
  type RelayProcess,
} from '../../test/helpers/relay/peers.ts';
import { startRedis, waitStore, type RedisServer } from '../../test/helpers/redis.ts';
import { steadyRate, submitTo } from '../../test/helpers/relay/rate.ts';
import { SharedRateLimits } from '../../relay/src/shared-state/rate-limits.ts';
import { startPostfix, waitPort } from '../lib/smtp.ts';
import { rejectAccuracy } from './reject.ts';
import { connectionCaps } from './connections.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'postfix-messages': { type: 'string', default: '40' },
    limit: { type: 'string', default: '30' },
    only: { type: 'string', default: 'gcra,reject,connections' },
    'reject-limit': { type: 'string', default: '60' },
    caps: { type: 'string', default: '2,4' },
    'connection-messages': { type: 'string', default: '200' },
    'delay-ms': { type: 'string', default: '50' },
  },
});
const only = new Set(values.only.split(','));
const MESSAGES = Number(positionals[0] ?? 400);
const POSTFIX_MESSAGES = Number(values['postfix-messages']);
const LIMIT = Number(values.limit);

/** Three quarters of the mail to relay a, an eighth each to b and c. */
const split = (total: number) => {
  const small = Math.round(total / 8);
  return { a: total - 2 * small, b: small, c: small };
};

interface Row {
  setup: string;
  limit: number;
  messages: number;
  poolRate: number;
  busiestRate: number;
}

/** Delivers `total` messages split over three servers to one timed upstream; the pool's rates. */
async function measure(
  setup: string,
  limit: number,
  total: number,
  start: (upstreamPort: number) => Promise<{ ports: number[]; stop: () => Promise<void> }>,
): Promise<Row> {
  const upstream = await startScripted();
  const arrivals = new Map<string, number[]>();
  upstream.onData = (raw) => {
    const who = /^To: ([a-z])-/m.exec(raw)?.[1] ?? '';
    arrivals.set(who, [...(arrivals.get(who) ?? []), Date.now()]);
    return undefined;
  };
  const servers = await start(upstream.port);
  const counts = split(total);
  try {
    await Promise.all(
      (['a', 'b', 'c'] as const).map((who, i) =>
        submitTo(servers.ports[i]!, counts[who], (n) => `${who}-${n}@pool.test`),
      ),
    );
    const delivered = () => [...arrivals.values()].reduce((n, t) => n + t.length, 0);
    await waitFor(() => delivered() === total, 600_000, `${setup}: all delivered`);
  } finally {
    await servers.stop();
    await upstream.stop();
  }
  const all = [...arrivals.values()].flat().sort((x, y) => x - y);
  const row = {
    setup,
    limit,
    messages: total,
    poolRate: steadyRate(all),
    busiestRate: steadyRate(arrivals.get('a')!),
  };
  process.stderr.write(`measured: ${JSON.stringify(row)}\n`);
  return row;
}

async function mailfleet(work: string, shared: { url: string; passwordFile: string } | undefined) {
  // One key prefix for the three relays: they are one pool.
  const keyPrefix = `bench:${Date.now()}:`;
  return async (upstreamPort: number) => {
    const relays: RelayProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const spool = mkdtempSync(join(work, 'spool-'));
      const config = relayConfig(spool, upstreamPort, {
        ...(shared ? { sharedState: { ...shared, keyPrefix } } : {}),
        rateLimits: [
          {
            name: 'bulk',
            match: { recipientDomains: ['pool.test'] },
            rate: { messages: LIMIT / 3, per: 'second' },
            burst: 1,
            ...(shared ? { pool: { rate: { messages: LIMIT, per: 'second' }, burst: 1 } } : {}),
          },
        ],
      });
      relays.push(await startRelay(config));
    }
    if (shared) for (const r of relays) await waitStore(r, true);
    return {
      ports: relays.map((r) => r.ports.smtp),
      stop: async () => {
        if (shared) latencies.push(...(await Promise.all(relays.map(relayLatency))));
        for (const r of relays) await r.stop();
      },
    };
  };
}

/** The relays' decision histograms: count and mean, and the share of decisions under 1 ms. */
const latencies: { count: number; sum: number; under1ms: number; limited: number }[] = [];
async function relayLatency(r: RelayProcess) {
  const name = 'mailfleet_relay_shared_rate_limit_decision_seconds';
  return {
    count: await r.metric(`${name}_count`),
    sum: await r.metric(`${name}_sum`),
    under1ms: await r.metric(`${name}_bucket`, { le: '0.001' }),
    limited: await r.metric('mailfleet_relay_shared_rate_limit_decisions_total', { decision: 'limited' }),
  };
}

function postfix(work: string) {
  return async (upstreamPort: number) => {
    const dirs: string[] = [];
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = join(work, `postfix${i}`);
      const port = await freePort();
      startPostfix(dir, port, upstreamPort, { extraMain: ['default_destination_rate_delay = 1s'] });
      await waitPort(port);
      dirs.push(dir);
      ports.push(port);
    }
    return {
      ports,
      stop: async () => {
        for (const dir of dirs) spawnSync('postfix', ['-c', join(dir, 'conf'), 'stop']);
      },
    };
  };
}

/** Decisions from this process against the store: sequential latency, and 3 callers at once. */
async function storeLatency(url: string, password: string) {
  const redis = new Redis(url, { password, enableOfflineQueue: false, lazyConnect: true });
  await redis.connect();
  const limiter = new SharedRateLimits({
    redis,
    keyPrefix: 'bench-latency:',
    connected: () => true,
    registry: new Registry(),
  });
  // A rate no loop reaches, so every decision is "allowed" and writes (the costly path).
  const request = [{ limit: 'l', destination: 'd', rate: { messages: 1e9, periodMs: 1000, burst: 1e9 } }];
  const samples: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t = process.hrtime.bigint();
    await limiter.decide(request);
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  samples.sort((x, y) => x - y);
  const at = (q: number) => samples[Math.floor(q * (samples.length - 1))]!;
  const started = process.hrtime.bigint();
  const n = 3000;
  let done = 0;
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      while (done < n) {
        done++;
        await limiter.decide(request);
      }
    }),
  );
  const perSecond = n / (Number(process.hrtime.bigint() - started) / 1e9);
  redis.disconnect();
  return { p50: at(0.5), p99: at(0.99), perSecond };
}

/** The GCRA rows: the delivered rate under a pool-wide limit, static share, store and Postfix. */
async function gcra(work: string, redis: RedisServer): Promise<void> {
  const rows: Row[] = [];
  const store = await storeLatency(redis.url, redis.password);
  rows.push(
    await measure(
      'mailfleet, static share (limit/3 per relay)',
      LIMIT,
      MESSAGES,
      await mailfleet(work, undefined),
    ),
  );
  rows.push(
    await measure(
      'mailfleet, GCRA in redis-server (sharedState)',
      LIMIT,
      MESSAGES,
      await mailfleet(work, { url: redis.url, passwordFile: redis.passwordFile }),
    ),
  );
  if (process.getuid?.() === 0)
    rows.push(
      await measure(
        'postfix ×3, default_destination_rate_delay = 1s each',
        3,
        POSTFIX_MESSAGES,
        postfix(work),
      ),
    );
  else process.stdout.write('postfix reference skipped: needs root\n');
  const l = latencies.reduce((s, x) => ({
    count: s.count + x.count,
    sum: s.sum + x.sum,
    under1ms: s.under1ms + x.under1ms,
    limited: s.limited + x.limited,
  }));
  process.stdout.write(
    `Pool-wide RateLimit: 3 relays, one destination, 3/4 of the mail submitted to relay a, burst 1.\n` +
      `| setup | pool limit/s | messages | pool rate/s | accuracy | busiest relay/s |\n|---|---|---|---|---|---|\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.setup} | ${r.limit} | ${r.messages} | ${r.poolRate.toFixed(2)} | ${((r.poolRate / r.limit) * 100).toFixed(1)} % | ${r.busiestRate.toFixed(2)} |\n`,
    );
  process.stdout.write(
    `Decision latency in the relays: ${l.count} decisions (${l.limited} told to wait: the limit, not the relays, set the pace), ` +
      `mean ${((l.sum / l.count) * 1000).toFixed(2)} ms (event-loop time of a busy relay included), ` +
      `${((l.under1ms / l.count) * 100).toFixed(1)} % under 1 ms.\n` +
      `Load average at the end: ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} on ${cpus().length} cores.\n` +
      `Decision latency from one client: p50 ${store.p50.toFixed(3)} ms, p99 ${store.p99.toFixed(3)} ms; ` +
      `3 concurrent callers: ${store.perSecond.toFixed(0)} decisions/s.\n` +
      `Postfix has no pool-wide limit: each instance rate-limits its own deliveries, so the row above is the static share at Postfix's finest setting (1 message per second per destination per instance).\n`,
  );
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'pool-rate-bench-'));
  // Postfix's daemons (user postfix) must reach their queue directories inside it.
  chmodSync(work, 0o755);
  mkdirSync(join(work, 'redis'));
  const redis = await startRedis(join(work, 'redis'));
  const passwordFile = redis.passwordFile;
  try {
    if (only.has('gcra')) await gcra(work, redis);
    const shared = { url: redis.url, passwordFile };
    const postfixToo = process.getuid?.() === 0;
    if (only.has('reject'))
      await rejectAccuracy(work, shared, { limit: Number(values['reject-limit']), postfix: postfixToo });
    if (only.has('connections'))
      await connectionCaps(work, shared, {
        caps: values.caps.split(',').map(Number),
        messages: Number(values['connection-messages']),
        delayMs: Number(values['delay-ms']),
        postfix: postfixToo,
      });
  } finally {
    await redis.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
