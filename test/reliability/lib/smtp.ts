// Test-side SMTP pieces for the reliability suites: a raw client that checks every reply line is
// well formed (RFC 5321 §4.2: three digits, then "-" on continuation lines and " " or end of line on
// the last), and an in-process upstream that records what it accepted and lets a test hook the
// moments of a delivery (DATA started, 250 sent).
import { createConnection, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Reply {
  code: number;
  lines: string[];
}

export class ReplyError extends Error {}

const LINE = /^([2-5]\d\d)([ -]|$)(.*)$/;

/** One client session over a raw socket. Every reply line must parse; a bad one throws. */
export class SmtpClient {
  readonly socket: Socket;
  private buffer = '';
  private current: string[] = [];
  private readonly replies: Reply[] = [];
  private waiter: ((r: Reply | Error) => void) | undefined;
  private closedError: Error | undefined;
  /** Lines that did not parse as SMTP replies (a protocol error on the server side). */
  readonly malformed: string[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk.toString('latin1')));
    const closed = (err?: Error) => {
      this.closedError ??= err ?? new Error('connection closed');
      const w = this.waiter;
      this.waiter = undefined;
      w?.(this.closedError);
    };
    socket.on('error', (err) => closed(err));
    socket.on('close', () => closed());
  }

  static connect(port: number, timeoutMs = 10_000): Promise<SmtpClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(port, '127.0.0.1');
      socket.setNoDelay(true);
      const client = new SmtpClient(socket);
      socket.once('connect', () => resolve(client));
      socket.once('error', reject);
      socket.setTimeout(timeoutMs, () => socket.destroy(new Error('socket timeout')));
    });
  }

  private onData(text: string): void {
    this.buffer += text;
    let i;
    while ((i = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(i + 2);
      const m = LINE.exec(line);
      if (!m) {
        this.malformed.push(line);
        continue;
      }
      this.current.push(line);
      if (m[2] !== '-') {
        const reply = { code: Number(m[1]), lines: this.current };
        if (process.env.SMTP_TRACE) process.stdout.write(`<< ${reply.lines.join(' | ').slice(0, 200)}\n`);
        this.current = [];
        if (reply.lines.some((l) => l.slice(0, 3) !== reply.lines[0]!.slice(0, 3)))
          this.malformed.push(`mixed codes in one reply: ${reply.lines.join(' | ')}`);
        const w = this.waiter;
        this.waiter = undefined;
        if (w) w(reply);
        else this.replies.push(reply);
      }
    }
  }

  /** The next complete reply; rejects if the connection closes first. */
  reply(timeoutMs = 10_000): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new ReplyError(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
    });
  }

  /** Replies already received and not yet read. */
  drainQueued(): Reply[] {
    return this.replies.splice(0);
  }

  write(data: string | Buffer): void {
    if (process.env.SMTP_TRACE)
      process.stdout.write(`>> ${JSON.stringify(data.toString().slice(0, 200))} (${data.length})\n`);
    if (!this.socket.destroyed) this.socket.write(data);
  }

  async command(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Dot-stuffs a message body and appends the end-of-data marker. */
export function dataBlock(body: string): string {
  const normalized = body.endsWith('\r\n') ? body : `${body}\r\n`;
  return `${normalized.replace(/^\./gm, '..')}.\r\n`;
}

export interface RecordingUpstream {
  port: number;
  /** id → how many times it was accepted (250 sent). */
  delivered: Map<string, number>;
  /** Accepted messages whose id could not be read (DSNs, anything unexpected). */
  unknown: string[];
  /** Raw bytes accepted, per id (last copy). */
  bodies: Map<string, string>;
  /** When each id was first accepted (Date.now()). */
  firstAt: Map<string, number>;
  /** When each id was last accepted. */
  lastAt: Map<string, number>;
  /** Called when a DATA stream starts (the relay is mid-delivery). */
  onDataStart: (() => void) | undefined;
  /** Called right after the 250 for `id` was written. */
  onAccepted: ((id: string) => void) | undefined;
  /** While true every transaction gets 451 (a sick upstream). */
  refuse: boolean;
  stop(): Promise<void>;
}

/** The id of a test message: the token of its `X-Test-Id:` header. */
export function messageId(raw: string): string | undefined {
  return /^X-Test-Id: (\S+)/m.exec(raw)?.[1];
}

/** An smtp-server upstream on 127.0.0.1 that records every accepted message by X-Test-Id. */
export async function startRecordingUpstream(port = 0, host = '127.0.0.1'): Promise<RecordingUpstream> {
  const up: RecordingUpstream = {
    port: 0,
    delivered: new Map(),
    unknown: [],
    bodies: new Map(),
    firstAt: new Map(),
    lastAt: new Map(),
    onDataStart: undefined,
    onAccepted: undefined,
    refuse: false,
    stop: async () => undefined,
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    size: 64 * 1024 * 1024,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      let started = false;
      stream.on('data', (c: Buffer) => {
        if (!started) {
          started = true;
          up.onDataStart?.();
        }
        chunks.push(c);
      });
      stream.on('end', () => {
        if (up.refuse) return cb(Object.assign(new Error('try later'), { responseCode: 451 }));
        const raw = Buffer.concat(chunks).toString('latin1');
        const id = messageId(raw);
        if (id) {
          up.delivered.set(id, (up.delivered.get(id) ?? 0) + 1);
          up.bodies.set(id, raw);
          if (!up.firstAt.has(id)) up.firstAt.set(id, Date.now());
          up.lastAt.set(id, Date.now());
        } else up.unknown.push(raw.slice(0, 2000));
        cb(null);
        if (id) up.onAccepted?.(id);
      });
    },
  });
  // A relay killed mid-delivery resets its connections; smtp-server reports that as an 'error'.
  server.on('error', () => undefined);
  await new Promise<void>((r) => server.listen(port, host, () => r()));
  const address = server.server.address();
  up.port = typeof address === 'object' && address ? address.port : 0;
  up.stop = () =>
    new Promise((r) => {
      server.close(() => r());
      for (const c of (server as unknown as { connections: Set<{ close(): void }> }).connections) c.close();
    });
  return up;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export const LONG = Boolean(process.env.MAILFLEET_LONG);

/** Prints a figure line the docs quote (`# reliability <suite>: k=v ...`). */
export function report(suite: string, figures: Record<string, unknown>): void {
  const text = Object.entries(figures)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  process.stdout.write(`# reliability ${suite}: ${text}\n`);
}
