// Scheduler benchmark: 100,000 queued messages across 10,000 destinations, with and without 100
// RateLimits, through the real Scheduler with an in-memory spool and a deliverer that answers 250
// on the next turn of the event loop (no network: this measures the scheduler, not SMTP).
//
//   node --expose-gc bench/scheduler/run.ts
//
// Prints, per scenario: the cost of queueing (classification included) per message, the CPU per
// delivered message, the heap held by the queued messages, and the throughput of unlimited mail.
import { Scheduler, type ShapingSettings } from '../../relay/src/scheduler/scheduler.ts';
import { buildMessage, type QueuedMessage } from '../../relay/src/scheduler/model.ts';
import type { Spool } from '../../relay/src/spool/store.ts';
import type { DeliveryReport, DeliveryRequest } from '../../relay/src/delivery/deliverer.ts';
import type { RateLimitConfig } from '../../relay/src/config/types.ts';

const MESSAGES = Number(process.env.MESSAGES ?? 100_000);
const DESTINATIONS = 10_000;
const LIMITS = 100;
/** Destinations 0..4999 are covered by the limits (50 each); 5000..9999 are never limited. */
const LIMITED_DESTINATIONS = 5_000;

const spool = {
  readBody: () => Promise.resolve(Buffer.from('body')),
  recordStates: () => Promise.resolve(),
  remove: () => Promise.resolve(),
} as unknown as Spool;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function limits(ratePerSecond: number): RateLimitConfig[] {
  return Array.from({ length: LIMITS }, (_, l) => ({
    name: `limit${l}`,
    match: {
      senderDomains: [],
      senderAddresses: [],
      recipientDomains: Array.from(
        { length: LIMITED_DESTINATIONS / LIMITS },
        (_, k) => `d${l * 50 + k}.test`,
      ),
      recipientMXHosts: [],
    },
    rate: { messages: ratePerSecond, per: 'second' as const },
    burst: 1,
    maxConnections: 5,
    onExceed: 'defer' as const,
    share: 1,
  }));
}

function shaping(rateLimits: RateLimitConfig[]): ShapingSettings {
  return {
    rateLimits,
    adaptiveBackoff: {
      enabled: true,
      throttlePatterns: ['try again later'],
      decrease: 0.5,
      increase: 1.5,
      minFactor: 1 / 64,
      successesPerStep: 20,
      hold: '30s',
    },
    suspendedDomains: [],
  };
}

interface Result {
  scenario: string;
  queued: number;
  queueUsPerMessage: number;
  heapBytesPerMessage: number;
  unlimitedDelivered: number;
  unlimitedSeconds: number;
  unlimitedPerSecond: number;
  cpuUsPerDelivered: number;
  limitedDeliveredMeanwhile: number;
}

async function run(scenario: string, rateLimits: RateLimitConfig[], onlyUnlimited: boolean): Promise<Result> {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let delivered = 0;
  let unlimitedDelivered = 0;
  let limitedDelivered = 0;
  let unlimitedTotal = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const deliver = (request: DeliveryRequest): Promise<DeliveryReport> =>
    new Promise((resolve) =>
      setImmediate(() => {
        delivered++;
        const n = Number(/^d(\d+)\./.exec(request.domain)?.[1]);
        if (n >= LIMITED_DESTINATIONS) {
          if (++unlimitedDelivered === unlimitedTotal) resolveDone();
        } else limitedDelivered++;
        resolve({
          results: request.recipients.map((recipient) => ({
            recipient,
            outcome: 'delivered',
            reply: '250 ok',
            code: 250,
          })),
          host: 'bench',
        });
      }),
    );
  const scheduler = new Scheduler(
    {
      spool,
      deliver,
      now: Date.now,
      random: Math.random,
      observer: {
        outcome: () => undefined,
        attempt: () => undefined,
        failed: () => Promise.resolve(),
        finished: () => undefined,
        error: (msg, fields) => console.error(msg, fields),
      },
    },
    {
      maxConnections: 100,
      maxConnectionsPerDestination: 10,
      retry: { firstRetryMs: 300_000, maxBackoffMs: 3_600_000, maxQueueLifetimeMs: 5 * 86_400_000 },
    },
    shaping(rateLimits),
  );
  scheduler.pause();
  const messages: QueuedMessage[] = [];
  const now = Date.now();
  for (let i = 0; i < MESSAGES; i++) {
    const destination = i % DESTINATIONS;
    if (onlyUnlimited && destination < LIMITED_DESTINATIONS) continue;
    if (destination >= LIMITED_DESTINATIONS) unlimitedTotal++;
    const envelope = {
      id: `M${i}`,
      from: `s${i % 50}@sender${i % 7}.example`,
      recipients: [`u${i}@d${destination}.test`],
      receivedAt: now,
      client: { address: '127.0.0.1', helo: 'bench' },
      bodyLength: 4,
      bodyCrc32: 0,
    };
    messages.push(buildMessage(envelope, new Map(), (d) => d, now));
  }
  const queueStart = process.hrtime.bigint();
  for (const m of messages) scheduler.add(m);
  const queueNs = Number(process.hrtime.bigint() - queueStart);
  messages.length = 0;
  gc();
  const heapQueued = process.memoryUsage().heapUsed - heapBefore;
  const queued = scheduler.messages.size;

  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  scheduler.resume();
  await done;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  scheduler.stop();
  return {
    scenario,
    queued,
    queueUsPerMessage: queueNs / 1000 / queued,
    heapBytesPerMessage: heapQueued / queued,
    unlimitedDelivered,
    unlimitedSeconds: seconds,
    unlimitedPerSecond: unlimitedDelivered / seconds,
    cpuUsPerDelivered: (cpu.user + cpu.system) / delivered,
    limitedDeliveredMeanwhile: limitedDelivered,
  };
}

const results: Result[] = [];
results.push(await run('unlimited mail alone (50,000), no limits', [], true));
results.push(await run('100,000 messages, no limits', [], false));
results.push(
  await run('100,000 messages, 100 limits at 10/s (5,000 limited destinations)', limits(10), false),
);
results.push(await run('100,000 messages, 100 limits at 1000/s', limits(1000), false));

console.log(`node ${process.version}, ${MESSAGES} messages, ${DESTINATIONS} destinations, ${LIMITS} limits`);
console.log(
  '| scenario | queued | queue µs/msg | heap B/msg | unlimited delivered | s | unlimited msg/s | CPU µs/delivered | limited delivered meanwhile |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(
    `| ${r.scenario} | ${r.queued} | ${r.queueUsPerMessage.toFixed(2)} | ${Math.round(r.heapBytesPerMessage)} | ${r.unlimitedDelivered} | ${r.unlimitedSeconds.toFixed(2)} | ${Math.round(r.unlimitedPerSecond)} | ${r.cpuUsPerDelivered.toFixed(1)} | ${r.limitedDeliveredMeanwhile} |`,
  );
}
