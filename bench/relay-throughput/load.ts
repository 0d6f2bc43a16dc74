// The benchmark's own SMTP client, for what smtp-source cannot do: a paced load (the accept
// latency at 80 % of the measured maximum) and messages held in flight (memory per message).
import { createConnection, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IDLE_BEFORE_MS = 8000;

/** A message body of about `size` bytes: 76-character lines, then the end-of-data line. */
export function messageBody(size: number): { data: Buffer; end: Buffer } {
  const line = `${'x'.repeat(76)}\r\n`;
  const text = `Subject: bench\r\n\r\n${line.repeat(Math.max(1, Math.ceil((size - 18) / line.length)))}`;
  return { data: Buffer.from(text), end: Buffer.from('.\r\n') };
}

/** One SMTP session: send a line or bytes, await the next final reply line. */
class Session {
  private buffer = '';
  private readonly waiters: ((line: string) => void)[] = [];
  readonly socket: Socket;

  constructor(port: number) {
    this.socket = createConnection(port, '127.0.0.1');
    this.socket.on('data', (d) => {
      this.buffer += d.toString('latin1');
      let i;
      while ((i = this.buffer.indexOf('\r\n')) >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 2);
        if (line[3] === ' ') this.waiters.shift()?.(line);
      }
    });
  }

  reply(): Promise<string> {
    return new Promise((r) => this.waiters.push(r));
  }

  async command(line: string, expect: string): Promise<void> {
    const reply = this.reply();
    this.socket.write(`${line}\r\n`);
    const got = await reply;
    if (!got.startsWith(expect)) throw new Error(`${line}: ${got}`);
  }

  /** Greeting and EHLO. */
  static async open(port: number): Promise<Session> {
    const s = new Session(port);
    const greeting = await s.reply();
    if (!greeting.startsWith('220')) throw new Error(greeting);
    await s.command('EHLO bench.localhost', '250');
    return s;
  }

  async startData(): Promise<void> {
    await this.command('MAIL FROM:<bench@example.com>', '250');
    await this.command('RCPT TO:<rcpt@example.org>', '250');
    await this.command('DATA', '354');
  }

  /** Writes `bytes` and resolves once the kernel has taken them. */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    await this.command('QUIT', '221').catch(() => undefined);
    this.socket.destroy();
  }
}

/**
 * `count` messages offered at `rate` per second (message k is due at start + k / rate) over
 * `sessions` reused sessions; accept latency is the end of DATA to the 250. When the server falls
 * behind, messages start late and the achieved rate is below the target.
 */
export async function pacedLatency(options: {
  port: number;
  sessions: number;
  rate: number;
  count: number;
  size: number;
}): Promise<{ p50: number; p99: number; achieved: number }> {
  const { data, end } = messageBody(options.size);
  const body = Buffer.concat([data, end]);
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    const session = await Session.open(options.port);
    for (let k = next++; k < options.count; k = next++) {
      const due = started + (k * 1000) / options.rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      await session.startData();
      const sent = performance.now();
      const reply = session.reply();
      session.socket.write(body);
      const got = await reply;
      if (!got.startsWith('250')) throw new Error(got);
      samples.push(performance.now() - sent);
    }
    await session.close();
  };
  await Promise.all(Array.from({ length: options.sessions }, worker));
  const seconds = (performance.now() - started) / 1000;
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), achieved: samples.length / seconds };
}

/**
 * Message bytes still in the kernel on their way to the listener on `port`: received and not yet
 * read (its sockets' Recv-Q), or not yet sent by the local clients (their Send-Q).
 */
export function receiveQueued(port: number): number {
  const queues = (filter: string, column: number) =>
    spawnSync('ss', ['-Htn', 'state', 'established', filter], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((line) => line.trim())
      .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[column]), 0);
  return queues(`sport = :${port}`, 0) + queues(`dport = :${port}`, 1);
}

/** Proportional set size of the processes, bytes (shared pages split between their users). */
export function pss(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb * 1024;
}

/**
 * Holds `count` messages in flight (every byte of DATA sent but the final dot), samples `measure`
 * then, and finishes them. `measure` also runs once before the sessions open.
 */
export async function holdInFlight<T>(options: {
  port: number;
  count: number;
  size: number;
  measure: () => Promise<T> | T;
}): Promise<{ before: T; during: T[] }> {
  const { data, end } = messageBody(options.size);
  // Idle first: V8's memory reducer collects the garbage of the load before (it runs a few seconds
  // after allocation stops), which would otherwise be freed during the hold and hide its growth.
  await sleep(IDLE_BEFORE_MS);
  const before = await options.measure();
  const sessions = await Promise.all(Array.from({ length: options.count }, () => Session.open(options.port)));
  await Promise.all(
    sessions.map(async (s) => {
      await s.startData();
      await s.write(data);
    }),
  );
  // Bytes still queued in the kernel are not the server's yet (a busy server reads 50 MB in more
  // than a second), and it keeps growing for a moment after reading them: sampled over 3 s.
  for (const deadline = Date.now() + 60_000; receiveQueued(options.port) > 0 && Date.now() < deadline;)
    await sleep(100);
  const during: T[] = [];
  for (let i = 0; i < 6; i++) {
    await sleep(500);
    during.push(await options.measure());
  }
  await Promise.all(
    sessions.map(async (s) => {
      const reply = s.reply();
      s.socket.write(end);
      const got = await reply;
      if (!got.startsWith('250')) throw new Error(got);
      await s.close();
    }),
  );
  return { before, during };
}
