// The events webhook: the outbox (outbox.ts) drained by one sender, one batch in flight at a time,
// so a receiver sees the events in the order they were written. A batch is acknowledged (the ack
// position saved) only after a 2xx; anything else is retried with backoff, the same events first. Used by the relay and the tracker, each with its own outbox.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventsConfig } from '../../../contract/config.ts';
import { durationMs } from '../config/duration.ts';
import { batchBody } from './codec.ts';
import type { MailEvent } from './event.ts';
import { Outbox } from './outbox.ts';
import { SIGNATURE_HEADER, signBatch } from './signature.ts';

export interface BatchTiming {
  /** Unsent events in the outbox. */
  unsent: number;
  batchSize: number;
  /** When the oldest unsent event was written (ms). */
  oldestAt: number;
  intervalMs: number;
  now: number;
}

/** How long to wait before the next batch goes: 0 when full or when its first event waited enough. Pure. */
export function batchWait(t: BatchTiming): number {
  if (t.unsent >= t.batchSize) return 0;
  return Math.max(0, t.oldestAt + t.intervalMs - t.now);
}

/** The wait after `failures` failed attempts in a row: 1 s doubling, at most maxMs. Pure. */
export function retryWait(failures: number, maxMs: number): number {
  return Math.min(maxMs, 1000 * 2 ** Math.max(0, failures - 1));
}

export interface EventSinkOptions {
  config: () => EventsConfig;
  secret: () => Buffer | undefined;
  registry: Registry;
  /** Metric name prefix: `mailfleet_relay_` or `mailfleet_tracker_`. */
  prefix: string;
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
  now?: () => number;
}

export class EventSink {
  private readonly o: EventSinkOptions;
  readonly outbox: Outbox;
  private readonly sent: Counter;
  private readonly failures: Counter<'reason'>;
  private readonly dropped: Counter<'reason'>;
  /** Set while the sender runs; cleared by close(). */
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  /** Wakes the sender early when events are appended (not during a backoff). */
  private wake: () => void = () => undefined;
  /** Ends the sender's current sleep at once (close()). */
  private interrupt: () => void = () => undefined;
  /** Time of the oldest unsent event as last read, for the age gauge; undefined: none waiting. */
  private oldestAt: number | undefined;
  /** Appends completed so far: an append between a read and the sleep after it must not be missed. */
  private appends = 0;
  /** Failed attempts in a row (backoff). */
  private streak = 0;
  /** Set by flush(): batches go at once, without waiting for batchInterval. */
  private flushing = false;
  /** Aborts the POST in flight (close()). */
  private readonly abort = new AbortController();

  constructor(o: EventSinkOptions) {
    this.o = o;
    const p = `${o.prefix}events_`;
    const registers = [o.registry];
    this.sent = new Counter({
      name: `${p}sent_total`,
      help: 'Events the receiver acknowledged (2xx).',
      registers,
    });
    this.failures = new Counter({
      name: `${p}failures_total`,
      help: 'Batches that failed: reason="http_<status>", "network" or "timeout"; retried with backoff.',
      labelNames: ['reason'],
      registers,
    });
    this.dropped = new Counter({
      name: `${p}dropped_total`,
      help: 'Events lost unsent: reason="outbox_full" (oldest segment dropped at events.maxBytes) or "write_error".',
      labelNames: ['reason'],
      registers,
    });
    const damaged = new Counter({
      name: `${p}outbox_damaged_total`,
      help: 'Outbox lines skipped because their CRC did not match (a write torn by a crash).',
      registers,
    });
    this.outbox = new Outbox({
      dir: o.config().dir,
      maxBytes: o.config().maxBytes,
      dropped: (n, reason) => {
        this.dropped.inc({ reason }, n);
        o.log('warn', 'events dropped', { count: n, reason });
      },
      damaged: (n) => damaged.inc(n),
    });
    this.outbox.onAppended = () => {
      this.appends++;
      this.wake();
    };
    const outbox = this.outbox;
    new Gauge({
      name: `${p}outbox_bytes`,
      help: 'Bytes of the events outbox on disk.',
      registers,
      collect() {
        this.set(outbox.bytes);
      },
    });
    new Gauge({
      name: `${p}outbox_events`,
      help: 'Events in the outbox not yet acknowledged by the receiver.',
      registers,
      collect() {
        this.set(outbox.unsent);
      },
    });
    const age = () => (this.oldestAt === undefined ? 0 : Math.max(0, (this.now() - this.oldestAt) / 1000));
    new Gauge({
      name: `${p}oldest_age_seconds`,
      help: 'Age of the oldest event not yet acknowledged by the receiver (0 when none): how far behind the sink is.',
      registers,
      aggregator: 'max',
      collect() {
        this.set(age());
      },
    });
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  async start(): Promise<void> {
    await this.outbox.open();
    this.running = true;
    this.loop = this.run();
  }

  /** Writes the events of the configured types; resolves once they are on disk. */
  record(events: readonly (MailEvent | undefined)[]): Promise<void> {
    const types: readonly string[] = this.o.config().types;
    return this.outbox.append(
      events.filter((e): e is MailEvent => e !== undefined && types.includes(e.type)),
    );
  }

  /** Resolves once everything recorded so far is on disk. */
  settled(): Promise<void> {
    return this.outbox.settled();
  }

  /**
   * Sleeps `ms`; close() ends it early, and so do appends when `seen` (the append count before the
   * read that led here) is given: an append made since then ends it at once.
   */
  private sleep(ms: number, seen?: number): Promise<void> {
    // close() may come while the sender reads, when there is no sleep to interrupt yet.
    if (!this.running || (seen !== undefined && seen !== this.appends)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = () => undefined;
        this.interrupt = () => undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.interrupt = done;
      if (seen !== undefined) this.wake = done;
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      const config = this.o.config();
      const seen = this.appends;
      const { events, end } = await this.outbox.read(config.batchSize);
      const first = events[0];
      if (!first) {
        this.oldestAt = undefined;
        await this.sleep(60_000, seen);
        continue;
      }
      this.oldestAt = Date.parse(first.time);
      const wait = this.flushing
        ? 0
        : batchWait({
            unsent: events.length,
            batchSize: config.batchSize,
            oldestAt: this.oldestAt,
            intervalMs: durationMs(config.batchInterval),
            now: this.now(),
          });
      if (wait > 0) {
        await this.sleep(wait, seen);
        continue;
      }
      this.outbox.sending(end);
      const failure = await this.post(config, events);
      if (failure !== undefined) this.outbox.failed();
      if (!this.running && failure !== undefined) break;
      if (failure === undefined) {
        await this.outbox.commit(end);
        this.sent.inc(events.length);
        this.streak = 0;
        continue;
      }
      this.failures.inc({ reason: failure });
      this.streak++;
      if (this.streak === 1 || this.streak % 10 === 0)
        this.o.log('warn', 'events webhook failed, retrying', { reason: failure, failures: this.streak });
      // Only close() cuts the backoff short: new events do not make a down receiver come back.
      await this.sleep(retryWait(this.streak, durationMs(config.maxBackoff)));
    }
  }

  /** One POST; undefined when the receiver acknowledged it, else the failure reason. */
  private async post(config: EventsConfig, events: MailEvent[]): Promise<string | undefined> {
    const secret = this.o.secret();
    if (!secret) return 'no_secret';
    const body = batchBody(events);
    try {
      const res = await fetch(config.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-ndjson',
          [SIGNATURE_HEADER]: signBatch(secret, body, Math.floor(this.now() / 1000)),
        },
        body,
        redirect: 'error',
        signal: AbortSignal.any([AbortSignal.timeout(durationMs(config.timeout)), this.abort.signal]),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? undefined : `http_${res.status}`;
    } catch (err) {
      return (err as Error).name === 'TimeoutError' ? 'timeout' : 'network';
    }
  }

  /**
   * Sends what the outbox holds now, without waiting for batchInterval, until it is empty or `ms`
   * have passed (a stopping tracker, whose outbox goes with its pod). True when it emptied.
   */
  async flush(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    await this.outbox.settled();
    this.flushing = true;
    this.interrupt();
    while (this.outbox.unsent > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.outbox.unsent === 0;
  }

  async close(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.interrupt();
    await this.loop;
    await this.outbox.close();
  }
}
