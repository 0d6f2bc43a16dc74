import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Scheduler, type ShapingSettings } from './scheduler.ts';
import { buildMessage, type QueuedMessage } from './model.ts';
import type { Spool } from '../spool/store.ts';
import type { DeliveryReport, DeliveryRequest } from '../delivery/deliverer.ts';
import type { RateLimitConfig } from '../config/types.ts';
import type { SetTimer } from './timer.ts';

/** A fake clock: timers run in time order when the test advances it. */
function fakeClock() {
  let now = 0;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  const setTimer: SetTimer = (fn, delayMs) => {
    const t = { at: now + delayMs, fn, live: true };
    timers.push(t);
    return () => (t.live = false);
  };
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  };
  return {
    now: () => now,
    setTimer,
    async advance(ms: number) {
      const end = now + ms;
      await flush();
      for (;;) {
        timers = timers.filter((t) => t.live);
        const next = timers.sort((a, b) => a.at - b.at)[0];
        if (!next || next.at > end) break;
        now = Math.max(now, next.at);
        next.live = false;
        next.fn();
        await flush();
      }
      now = end;
      await flush();
    },
  };
}

const fakeSpool = {
  readMessage: () => Promise.resolve(Buffer.from('body')),
  recordStates: () => Promise.resolve(),
  remove: () => Promise.resolve(),
} as unknown as Spool;

type Reply = (request: DeliveryRequest) => string;

function harness(shaping: Partial<ShapingSettings>, reply: Reply = () => '250 2.0.0 ok') {
  const clock = fakeClock();
  const sent: { domain: string; from: string; at: number }[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  let holdMs = 0;
  const deliver = async (request: DeliveryRequest): Promise<DeliveryReport> => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    sent.push({ domain: request.domain, from: request.from, at: clock.now() });
    if (holdMs > 0) await new Promise<void>((r) => clock.setTimer(r, holdMs));
    concurrent--;
    const text = reply(request);
    const code = Number(text.slice(0, 3));
    const outcome = code < 300 ? 'delivered' : code < 500 ? 'deferred' : 'bounced';
    return {
      results: request.recipients.map((recipient) => ({ recipient, outcome, reply: text, code })),
      host: 'x',
    };
  };
  const scheduler = new Scheduler(
    {
      spool: fakeSpool,
      deliver,
      now: clock.now,
      random: () => 0.5,
      setTimer: clock.setTimer,
      observer: {
        outcome: () => undefined,
        attempt: () => undefined,
        failed: () => Promise.resolve(),
        finished: () => undefined,
        error: (msg, fields) => assert.fail(`${msg} ${JSON.stringify(fields)}`),
      },
    },
    {
      maxConnections: 100,
      maxConnectionsPerDestination: 10,
      retry: { firstRetryMs: 60_000, maxBackoffMs: 600_000, maxQueueLifetimeMs: 86_400_000 },
    },
    settings(shaping),
  );
  scheduler.start();
  let n = 0;
  const queue = (count: number, to: string, from = 'a@example.com'): QueuedMessage[] =>
    Array.from({ length: count }, () => {
      const id = `M${++n}`;
      const envelope = {
        id,
        from,
        recipients: [`r@${to}`],
        receivedAt: clock.now(),
        client: { address: '127.0.0.1', helo: 'x' },
        bodyLength: 4,
        bodyCrc32: 0,
      };
      const message = buildMessage(envelope, new Map(), (d) => d, clock.now());
      scheduler.add(message);
      return message;
    });
  return {
    clock,
    scheduler,
    sent,
    queue,
    maxConcurrent: () => maxConcurrent,
    holdDeliveries: (ms: number) => (holdMs = ms),
    times: (domain: string) => sent.filter((s) => s.domain === domain).map((s) => s.at),
  };
}

function settings(over: Partial<ShapingSettings>): ShapingSettings {
  return {
    rateLimits: [],
    adaptiveBackoff: {
      enabled: true,
      throttlePatterns: ['try again later'],
      decrease: 0.5,
      increase: 2,
      minFactor: 1 / 64,
      successesPerStep: 5,
      hold: '1s',
    },
    suspendedDomains: [],
    ...over,
  };
}

function limit(name: string, over: Partial<RateLimitConfig> = {}): RateLimitConfig {
  return {
    name,
    match: {
      senderDomains: [],
      senderAddresses: [],
      recipientDomains: [`${name}.test`],
      recipientMXHosts: [],
    },
    rate: { messages: 10, per: 'second' },
    burst: 1,
    onExceed: 'defer',
    share: 1,
    ...over,
  };
}

describe('scheduler traffic shaping (fake clock)', () => {
  test('a 10/s limit sends one message every 100 ms while unlimited mail goes at once', async () => {
    const h = harness({ rateLimits: [limit('slow')] });
    h.queue(30, 'slow.test');
    h.queue(30, 'free.test');
    await h.clock.advance(0);
    assert.equal(h.times('free.test').length, 30);
    assert.deepEqual(h.times('free.test'), new Array(30).fill(0));
    await h.clock.advance(2_000);
    assert.deepEqual(h.times('slow.test').slice(0, 4), [0, 100, 200, 300]);
    assert.equal(h.times('slow.test').length, 21, '0..2000 ms at 100 ms steps');
  });

  test('a message held back by a limit keeps its retry counter and says which limit and until when', async () => {
    const h = harness({ rateLimits: [limit('slow')] });
    const [, second] = h.queue(2, 'slow.test');
    await h.clock.advance(10);
    const job = [...second!.jobs.values()][0]!;
    assert.equal(job.state, 'ready');
    assert.equal(job.attempts, 0);
    assert.deepEqual(h.scheduler.whyWaiting(job), {
      reason: 'rate limit',
      limit: 'slow',
      until: 100,
      backoff: false,
    });
    await h.clock.advance(100);
    assert.equal(h.times('slow.test').length, 2);
  });

  test('a burst goes at once, then the rate', async () => {
    const h = harness({ rateLimits: [limit('slow', { burst: 5 })] });
    h.queue(7, 'slow.test');
    await h.clock.advance(250);
    assert.deepEqual(h.times('slow.test'), [0, 0, 0, 0, 0, 100, 200]);
  });

  test('every limit that matches must admit: the stricter one sets the pace', async () => {
    const sender = limit('sender', {
      match: {
        senderDomains: ['example.com'],
        senderAddresses: [],
        recipientDomains: [],
        recipientMXHosts: [],
      },
      rate: { messages: 2, per: 'second' },
    });
    const h = harness({ rateLimits: [limit('slow'), sender] });
    h.queue(5, 'slow.test');
    await h.clock.advance(1_000);
    assert.deepEqual(h.times('slow.test'), [0, 500, 1000]);
  });

  test('a Pool share scales the rate, and a new share applies without a restart', async () => {
    const h = harness({ rateLimits: [limit('slow', { share: 0.5 })] });
    h.queue(40, 'slow.test');
    await h.clock.advance(1_000);
    assert.equal(h.times('slow.test').length, 6, '5/s: 0, 200, ..., 1000');
    h.scheduler.configureShaping(settings({ rateLimits: [limit('slow', { share: 1 })] }));
    await h.clock.advance(1_000);
    // The 200 ms the last message owed at 5/s is kept; then one every 100 ms.
    assert.deepEqual(
      h.times('slow.test').filter((t) => t > 1000),
      [1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900, 2000],
    );
  });

  test('maxConnections caps the deliveries in flight for the limit destination', async () => {
    const h = harness({ rateLimits: [limit('slow', { rate: undefined, maxConnections: 2 })] });
    h.holdDeliveries(1_000);
    h.queue(6, 'slow.test');
    h.queue(6, 'free.test');
    await h.clock.advance(0);
    assert.equal(h.times('slow.test').length, 2);
    assert.equal(h.times('free.test').length, 6);
    await h.clock.advance(3_000);
    assert.deepEqual(h.times('slow.test'), [0, 0, 1000, 1000, 2000, 2000]);
  });

  test('maxMessagesPerConnection reaches the deliverer as a pool of its own', async () => {
    const requests: DeliveryRequest[] = [];
    const h = harness({ rateLimits: [limit('slow', { maxMessagesPerConnection: 3 })] }, (r) => {
      requests.push(r);
      return '250 ok';
    });
    h.queue(1, 'slow.test');
    h.queue(1, 'free.test');
    await h.clock.advance(0);
    assert.equal(requests.find((r) => r.domain === 'slow.test')?.pool?.maxMessages, 3);
    assert.equal(requests.find((r) => r.domain === 'free.test')?.pool, undefined);
  });

  test('mail of a suspended sending domain is held without attempts until a reload lifts it', async () => {
    const h = harness({ suspendedDomains: ['bad.example'] });
    const [held] = h.queue(3, 'free.test', 'x@bad.example');
    h.queue(2, 'free.test', 'x@example.com');
    await h.clock.advance(60_000);
    assert.deepEqual(
      h.sent.map((s) => s.from),
      ['x@example.com', 'x@example.com'],
    );
    const job = [...held!.jobs.values()][0]!;
    assert.equal(job.attempts, 0);
    assert.deepEqual(h.scheduler.whyWaiting(job), { reason: 'domain suspended' });
    h.scheduler.configureShaping(settings({ suspendedDomains: [] }));
    await h.clock.advance(0);
    assert.equal(h.sent.filter((s) => s.from === 'x@bad.example').length, 3);
  });

  test('throttling replies halve the rate, successes bring it back step by step', async () => {
    let throttle = true;
    const transitions: string[] = [];
    const h = harness({ rateLimits: [limit('slow')] }, () =>
      throttle ? '421 4.7.0 try again later' : '250 ok',
    );
    h.scheduler['deps'].observer.backoff = (t) => transitions.push(`${t.to}:${t.factor}`);
    h.queue(200, 'slow.test');
    await h.clock.advance(50);
    assert.deepEqual(transitions, ['backoff:0.5']);
    const state = () => h.scheduler.shaper.states()[0]!;
    assert.equal(state().ratePerSecond, 5);
    throttle = false;
    await h.clock.advance(30_000);
    assert.equal(state().backoff, 'normal');
    assert.equal(state().ratePerSecond, 10);
    assert.deepEqual(transitions, ['backoff:0.5', 'normal:1']);
  });

  test('a deep backlog for one limited destination does not delay new mail for others', async () => {
    const h = harness({ rateLimits: [limit('slow')] });
    h.queue(5_000, 'slow.test');
    await h.clock.advance(1_000);
    h.queue(1, 'new.test');
    await h.clock.advance(0);
    assert.deepEqual(h.times('new.test'), [1000]);
  });

  test('within a destination, messages go in arrival order', async () => {
    const h = harness({ rateLimits: [limit('slow')] });
    for (let i = 0; i < 5; i++) h.queue(1, 'slow.test', `${i}@example.com`);
    await h.clock.advance(1_000);
    assert.deepEqual(
      h.sent.map((s) => s.from),
      ['0', '1', '2', '3', '4'].map((i) => `${i}@example.com`),
    );
  });
});
