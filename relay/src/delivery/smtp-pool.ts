// One outbound destination's connections: nodemailer SMTPConnection sessions (EHLO, STARTTLS,
// AUTH, PIPELINING, dot-stuffing) reused across messages, at most limits.maxConnections at once,
// each closed after limits.maxMessages messages or limits.idleTimeoutMs unused. Messages wait in
// arrival order when every connection is busy. The message is handed over as the Buffer it is
// (no MIME compiling), dot-stuffed and ended with CRLF.CRLF by smtp-data.ts in one socket write
// (nodemailer's DataStream, a Transform piped into the socket per message, is not used).
// Decisions are pool-policy.ts; this file only does what they say.
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type {
  SMTPConnectionAuth,
  SMTPConnectionOptions,
  SMTPConnectionSendInfo,
} from 'nodemailer/lib/smtp-connection/index.js';
import type { Socket } from 'node:net';
import type { ConnectionGate, ConnectionLease, PoolLimits, PoolSettings } from './smtp-options.ts';
import { DotStuffer, smtpData } from './smtp-data.ts';
import { judgeTls, type TlsFailure, type TlsRequirement } from './tls-policy.ts';
import type { DaneExpectation } from './dane/tlsa.ts';
import type { NextHopDsn } from '../outcomes/dsn-params.ts';
import {
  afterSend,
  assign,
  envelopeOf,
  onFailure,
  type FailedAttempt,
  type SmtpFailure,
} from './pool-policy.ts';

/** An error as nodemailer's SMTPConnection reports it (results.ts reads these fields). */
export type SmtpError = Error & SmtpFailure;

/** nodemailer's answer, plus the TLS failure a report-only requirement let through. */
/** `dsnListed`: the server's EHLO listed DSN (RFC 3461), so it took the NOTIFY parameters. */
export type SendInfo = SMTPConnectionSendInfo & {
  tlsFailure?: TlsFailure;
  dsnListed?: boolean;
} & SessionInfo;

/**
 * The session a message went over, for TLS-RPT (RFC 8460 counts sessions, not messages): the
 * local address it left from (`sending-mta-ip`, §4.3) and whether this is the first answer the
 * session gave (a reused session's later messages are not counted again). On errors too.
 */
export interface SessionInfo {
  localAddress?: string | undefined;
  firstOfSession?: boolean;
}

/**
 * What SMTPConnection.send gets: nodemailer puts `dsn` (RET, ENVID) on MAIL FROM when the server
 * lists DSN; `rcptDsn` is ours, read by the RCPT TO override below (nodemailer gives every
 * recipient the same NOTIFY and ORCPT).
 */
interface SendEnvelope {
  from: string;
  to: string[];
  dsn?: { ret?: string; envid?: string };
  rcptDsn?: Map<string, string>;
}

/**
 * A message read as it is sent (a big one, from its spool file): `chunks` gives its bytes from
 * the first on each call, and throws instead of giving the last one when they are damaged
 * (`transient`: each chunk in the same buffer, valid until the next is asked for, for a pass that
 * only looks at them); `whole` gives them in one Buffer, for what needs all of them at once.
 */
export interface ChunkedMessage {
  readonly length: number;
  chunks(options?: { transient?: boolean }): AsyncIterable<Buffer>;
  whole(): Promise<Buffer>;
}

/**
 * `message` with `field` (its DKIM-Signature) in front, still chunked: the field is the first
 * chunk, then the message's own chunks, read and checked as they are sent.
 */
export function afterField(field: Buffer, message: ChunkedMessage): ChunkedMessage {
  return {
    length: field.length + message.length,
    async *chunks(options) {
      yield field;
      yield* message.chunks(options);
    },
    whole: async () => Buffer.concat([field, await message.whole()]),
  };
}

/** What the pool sends: one Buffer, parts sent one after the other, or a chunked message. */
export type MessageBody = Buffer | readonly Buffer[] | ChunkedMessage;

/**
 * The error a send fails with when its chunked message failed (damaged, unreadable): the session
 * was dropped before the end of data, and the message, not the destination, is at fault.
 */
export type SourceError = Error & { messageSource: true };

export function isSourceError(error: unknown): error is SourceError {
  return (error as Partial<SourceError> | undefined)?.messageSource === true;
}

function isChunked(body: MessageBody): body is ChunkedMessage {
  return !Buffer.isBuffer(body) && !Array.isArray(body);
}

interface Job {
  envelope: SendEnvelope;
  /** The message, in one Buffer, in parts sent one after the other, or in chunks read as sent. */
  body: MessageBody;
  resolve(info: SendInfo): void;
  reject(error: SmtpError): void;
  /** Times it went back to the queue after a connection failed under it. */
  requeues: number;
}

/**
 * The SMTPConnection internals the pool takes the message data over with (not in its typings):
 * `_createSendStream` is called after DATA's 354 and returns what `send` writes the message to;
 * the reply to the data goes to `_actionSMTPStream` through the `_responseActions` queue.
 */
interface SendStreamInternals {
  _createSendStream(callback: unknown): unknown;
  _responseActions: ((reply: string) => void)[];
  _actionSMTPStream(reply: string, callback: unknown): void;
  _socket: Socket | undefined;
  /** Builds the parameters of one RCPT TO, called right after the recipient is queued here. */
  _getDsnRcptToArgs(): string;
  _recipientQueue: string[];
  _envelope: SendEnvelope | undefined;
  _supportedExtensions: string[];
}

/** What a connection is judged on after EHLO/STARTTLS. */
interface TlsCheck {
  requirement: TlsRequirement;
  reportOnly: boolean;
  dane?: DaneExpectation | undefined;
}

/** The TLS socket's verdict fields (Node sets them after the handshake, authorized or not). */
interface TlsSocketState {
  authorized?: boolean;
  /** verifyError.code || verifyError.message (node:_tls_wrap onConnectSecure). */
  authorizationError?: string;
  getPeerCertificate?(detailed: true): PeerCertificate;
}

/** Node's detailed peer certificate: DER, and the next one up the chain (itself at the top). */
interface PeerCertificate {
  raw?: Buffer;
  issuerCertificate?: PeerCertificate;
}

/** The chain as the handshake gave it, the server's certificate first. */
function peerChain(socket: TlsSocketState | undefined): Buffer[] {
  const chain: Buffer[] = [];
  let cert = socket?.getPeerCertificate?.(true);
  while (cert?.raw && !chain.some((c) => c.equals(cert!.raw!))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * Stands in for nodemailer's DataStream: `send` writes the message to it once (a Buffer, the
 * parts of one: a DKIM-Signature field and the stored message, or a chunked message) and ends it,
 * and reads `outByteCount` when the reply comes. A message in memory and CRLF.CRLF leave in one
 * vectored write (the socket is corked meanwhile); a chunked one chunk by chunk, each written once
 * the socket has taken the previous ones (backpressure: 'drain'), and CRLF.CRLF only after its
 * last chunk came checked. When the chunks fail, the session is dropped without an end of data,
 * so the receiver discards the transaction; `failure` says why.
 */
class MessageData {
  outByteCount = 0;
  /** Why a chunked message could not be sent whole. */
  failure: SourceError | undefined;
  private readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  write(message: MessageBody): boolean {
    this.outByteCount = 0;
    if (isChunked(message)) void this.stream(message);
    else this.send(smtpData(message));
    return true;
  }

  end(): void {}

  private async stream(message: ChunkedMessage): Promise<void> {
    const stuffer = new DotStuffer();
    const out: Buffer[] = [];
    try {
      for await (const chunk of message.chunks()) {
        if (this.socket.destroyed) return;
        stuffer.push(chunk, out);
        if (!this.send(out)) await drained(this.socket);
      }
      if (this.socket.destroyed) return;
      stuffer.end(out);
      this.send(out);
    } catch (err) {
      this.failure = Object.assign(err instanceof Error ? err : new Error(String(err)), {
        messageSource: true as const,
      });
      // Mid-data no RSET can be sent: closing is what ends the transaction unsent.
      this.socket.destroy();
    }
  }

  /** Writes `out` in one corked batch and empties it; false when the socket asks to wait. */
  private send(out: Buffer[]): boolean {
    this.socket.cork();
    for (const part of out) {
      this.outByteCount += part.length;
      this.socket.write(part);
    }
    this.socket.uncork();
    out.length = 0;
    return !this.socket.writableNeedDrain;
  }
}

/** Resolves when the socket took what it buffered, or is gone. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.removeListener('drain', done);
      socket.removeListener('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

type State = 'connecting' | 'idle' | 'busy' | 'resetting' | 'closing' | 'gone';

/** One session to the destination. */
class PooledConnection {
  readonly smtp: SMTPConnection;
  state: State = 'connecting';
  /** Messages sent over it (answered, whatever the answer). */
  sent = 0;
  /** Set when the current message's data started going out (after DATA's 354). */
  bodyStarted = false;
  /** The requirement this session failed, when it was only to be reported (MTA-STS testing). */
  tlsFailure: TlsFailure | undefined;
  /** Closes it after a while unused; refreshed, not recreated, each time it goes idle. */
  idleTimer: NodeJS.Timeout | undefined;
  /** Its room in the pool-wide count (a gated pool), released when it is gone. */
  lease: ConnectionLease | undefined;
  /** Whether a message's answer has already been handed back from this session (SessionInfo). */
  answered = false;
  /** The current message's data, once DATA got its 354. */
  data: MessageData | undefined;

  constructor(options: SMTPConnectionOptions, onGone: (c: PooledConnection) => void) {
    this.smtp = new SMTPConnection(options);
    // Errors also reach the callback of whatever is in progress, or end an idle session: either
    // way 'end' follows. Without a listener an EventEmitter 'error' would throw.
    this.smtp.on('error', () => undefined);
    this.smtp.once('end', () => {
      if (this.state === 'gone') return;
      this.state = 'gone';
      clearTimeout(this.idleTimer);
      onGone(this);
    });
    // Whether any of a message went out decides whether a dead reused connection may be retried
    // on another one (pool-policy.ts onFailure); nodemailer starts the data stream after 354.
    // The pool never uses LMTP, whose replies per recipient the stand-in does not handle.
    const smtp = this.smtp as unknown as SendStreamInternals;
    if (
      typeof smtp._createSendStream !== 'function' ||
      typeof smtp._actionSMTPStream !== 'function' ||
      typeof smtp._getDsnRcptToArgs !== 'function' ||
      !Array.isArray(smtp._responseActions)
    )
      throw new Error('nodemailer SMTPConnection changed');
    // Each recipient's own NOTIFY and ORCPT (RFC 3461 §4.1, §4.2), only to a server listing DSN.
    smtp._getDsnRcptToArgs = () => {
      const recipient = smtp._recipientQueue.at(-1) ?? '';
      const listed = Array.isArray(smtp._supportedExtensions) && smtp._supportedExtensions.includes('DSN');
      return listed ? (smtp._envelope?.rcptDsn?.get(recipient) ?? '') : '';
    };
    smtp._createSendStream = (callback: unknown) => {
      this.bodyStarted = true;
      smtp._responseActions.push((reply) => smtp._actionSMTPStream(reply, callback));
      this.data = new MessageData(smtp._socket!);
      return this.data;
    };
  }

  /**
   * Connects, says EHLO (STARTTLS as configured), checks the TLS requirement and logs in when
   * the server offers AUTH. A connection that fails the requirement is closed before AUTH or MAIL.
   */
  open(
    auth: SMTPConnectionAuth | undefined,
    tls: TlsCheck,
    done: (failure?: Pick<FailedAttempt, 'stage' | 'error'>) => void,
  ) {
    let settled = false;
    const settle = (failure?: Pick<FailedAttempt, 'stage' | 'error'>) => {
      if (settled) return;
      settled = true;
      this.smtp.removeListener('error', onError);
      this.smtp.removeListener('end', onEnd);
      done(failure);
    };
    const onError = (error: SmtpError) => settle({ stage: 'connect', error });
    const onEnd = () =>
      settle({
        stage: 'connect',
        error: Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' }),
      });
    this.smtp.on('error', onError);
    this.smtp.once('end', onEnd);
    this.smtp.connect((err) => {
      // Only a close before the greeting is reported here; other failures come as 'error'.
      if (err) return settle({ stage: 'closed-before-greeting', error: err });
      const tlsError = this.tlsPolicyError(tls);
      if (tlsError && tls.reportOnly) this.tlsFailure = tlsError.tlsFailure;
      else if (tlsError) {
        settle({ stage: 'connect', error: Object.assign(tlsError, this.session()) });
        this.smtp.close();
        return;
      }
      if (!auth || !this.smtp.allowsAuth) return settle();
      this.smtp.login(auth, (loginErr) => {
        if (loginErr) {
          settle({ stage: 'connect', error: loginErr });
          this.smtp.close();
          return;
        }
        settle();
      });
    });
  }

  /** What the next answer says about the session (SessionInfo); the first one, once. */
  session(): SessionInfo {
    const socket = (this.smtp as unknown as SendStreamInternals)._socket;
    const first = !this.answered;
    this.answered = true;
    return { localAddress: socket?.localAddress, firstOfSession: first };
  }

  /** The requirement's verdict on this session, as an error that defers the mail, or undefined. */
  private tlsPolicyError({
    requirement,
    dane,
  }: TlsCheck): (SmtpError & { tlsFailure: TlsFailure }) | undefined {
    const socket = (this.smtp as unknown as SendStreamInternals)._socket as
      (Socket & TlsSocketState) | undefined;
    const verdict = judgeTls(
      requirement,
      {
        secure: this.smtp.secure,
        authorized: socket?.authorized === true,
        authorizationError: socket?.authorizationError,
        chain: requirement === 'dane' && this.smtp.secure ? peerChain(socket) : undefined,
      },
      dane,
    );
    if (verdict.ok) return undefined;
    return Object.assign(new Error(`TLS ${requirement} required: ${verdict.failure} (${verdict.detail})`), {
      code: 'ETLSPOLICY',
      tlsFailure: verdict.failure,
    });
  }
}

export class SmtpPool {
  private readonly connection: SMTPConnectionOptions;
  private readonly auth: SMTPConnectionAuth | undefined;
  private readonly limits: PoolLimits;
  private readonly tls: TlsCheck;
  /** Messages waiting for a connection, oldest first. */
  private readonly queue: Job[] = [];
  /** Connected sessions with nothing to send, most recently used last. */
  private readonly idle: PooledConnection[] = [];
  /** Connections open or being opened (counted against limits.maxConnections). */
  private open = 0;
  /** Requeued messages waiting out their pause before going back to the queue. */
  private readonly requeued = new Map<NodeJS.Timeout, Job>();
  private closed = false;
  /** Pool-wide room for new connections (a RateLimit's pool maxConnections); undefined: none asked. */
  private readonly gate: ConnectionGate | undefined;
  /** A lease is being asked for (one at a time, counted in `open` meanwhile). */
  private asking = false;
  /** Asks the gate again after it had no room while messages wait. */
  private gateRetry: NodeJS.Timeout | undefined;
  /** The gate's last answer was no room: this pool counts among the store's waiters. */
  private refused = false;

  constructor(settings: PoolSettings) {
    this.connection = settings.connection;
    this.auth = settings.auth;
    this.limits = settings.limits;
    this.gate = settings.gate;
    this.tls = {
      requirement: settings.tlsRequirement,
      reportOnly: settings.tlsReportOnly,
      dane: settings.tlsDane,
    };
  }

  /** Sends one message; rejects with nodemailer's error (results.ts classifies it). */
  send(from: string, recipients: readonly string[], body: MessageBody, dsn?: NextHopDsn): Promise<SendInfo> {
    if (this.closed) return Promise.reject(poolClosed());
    const envelope: SendEnvelope = envelopeOf(from, recipients);
    if (dsn) {
      const mail = { ...(dsn.ret ? { ret: dsn.ret } : {}), ...(dsn.envid ? { envid: dsn.envid } : {}) };
      if (mail.ret || mail.envid) envelope.dsn = mail;
      if (dsn.rcpt.size > 0) envelope.rcptDsn = dsn.rcpt;
    }
    return new Promise<SendInfo>((resolve, reject) => {
      this.queue.push({ envelope, body, resolve, reject, requeues: 0 });
      this.dispatch();
    });
  }

  /** Idle connections close now, busy ones after their message; waiting messages fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.gateRetry);
    this.withdraw();
    for (const [timer, job] of this.requeued) {
      clearTimeout(timer);
      job.reject(poolClosed());
    }
    this.requeued.clear();
    for (const job of this.queue.splice(0)) job.reject(poolClosed());
    for (const c of this.idle.splice(0)) c.smtp.close();
  }

  private dispatch(): void {
    if (this.queue.length === 0) this.withdraw();
    while (this.queue.length > 0) {
      const next = assign({
        idle: this.idle.length,
        open: this.open,
        maxConnections: this.limits.maxConnections,
      });
      if (next === 'wait') return;
      if (next === 'open' && this.gate) return this.openLeased(this.gate);
      const job = this.queue.shift()!;
      if (next === 'idle') this.run(this.idle.pop()!, job);
      else this.connect(job, undefined);
    }
  }

  /**
   * Asks the gate for room, then opens a connection for the oldest waiting message. No room: the
   * queue moves on over this pool's open connections as they free, and the gate is asked again
   * shortly while messages wait (with none open nothing else would wake the queue; with some
   * open, asking again keeps this relay among the store's waiters, so peers at their fair share
   * leave it room).
   */
  private openLeased(gate: ConnectionGate): void {
    if (this.asking || this.gateRetry) return;
    this.asking = true;
    this.open++;
    void gate.acquire().then((lease) => {
      this.asking = false;
      this.open--;
      // Granted, the store took this relay off its waiters; refused, it put it on them.
      this.refused = !lease;
      const job = lease && !this.closed ? this.queue.shift() : undefined;
      if (job) {
        this.connect(job, lease);
        return this.dispatch();
      }
      lease?.release();
      if (!lease && !this.closed && this.queue.length > 0) {
        this.gateRetry = setTimeout(() => {
          this.gateRetry = undefined;
          this.dispatch();
        }, GATE_RETRY_MS);
      } else if (!lease) this.withdraw();
    });
  }

  /**
   * A pool refused room that has nothing waiting any more (its messages went over the
   * connections it has: found at the next retry, within GATE_RETRY_MS) says so at once.
   */
  private withdraw(): void {
    if (!this.refused || !this.gate) return;
    this.refused = false;
    this.gate.withdraw();
  }

  private connect(job: Job, lease: ConnectionLease | undefined): void {
    this.open++;
    const conn = new PooledConnection(this.connection, (c) => this.gone(c));
    conn.lease = lease;
    conn.open(this.auth, this.tls, (failure) => {
      if (failure) {
        this.failed(job, { ...failure, reused: false, bodyStarted: false, requeues: job.requeues });
        conn.smtp.close();
        return;
      }
      if (this.closed) {
        job.reject(poolClosed());
        conn.smtp.close();
        return;
      }
      this.run(conn, job);
    });
  }

  private run(conn: PooledConnection, job: Job): void {
    conn.state = 'busy';
    conn.bodyStarted = false;
    conn.data = undefined;
    const reused = conn.sent > 0;
    // nodemailer hands `job.body` to MessageData.write as it is (its typings say Buffer or stream;
    // a chunked message has neither `on` nor `pipe`, so it is not taken for a stream).
    conn.smtp.send(job.envelope, job.body as Buffer, (err, info) => {
      conn.sent++;
      const failure = err ?? undefined;
      // The message's own failure, not the session's: not retried elsewhere, never requeued.
      const source = conn.data?.failure;
      if (source) job.reject(Object.assign(source, conn.session()));
      else if (failure) {
        this.failed(job, {
          stage: 'send',
          error: Object.assign(failure, conn.session()),
          reused,
          bodyStarted: conn.bodyStarted,
          requeues: job.requeues,
        });
      } else {
        const extensions = (conn.smtp as unknown as SendStreamInternals)._supportedExtensions;
        const dsnListed = Array.isArray(extensions) && extensions.includes('DSN');
        job.resolve({
          ...info,
          dsnListed,
          ...conn.session(),
          ...(conn.tlsFailure ? { tlsFailure: conn.tlsFailure } : {}),
        });
      }
      if (conn.state === 'gone') return;
      const next = afterSend({
        failure,
        sent: conn.sent,
        maxMessages: this.limits.maxMessages,
        closing: this.closed,
      });
      if (next === 'reuse') this.release(conn);
      else if (next === 'close') conn.smtp.close();
      else {
        conn.state = 'resetting';
        conn.smtp.reset((resetErr) => {
          if (conn.state !== 'resetting') return;
          if (resetErr || this.closed) conn.smtp.close();
          else this.release(conn);
        });
      }
    });
  }

  /** A connection free for the next message: the oldest waiting one, or the idle list. */
  private release(conn: PooledConnection): void {
    const job = this.queue.shift();
    if (job) return this.run(conn, job);
    conn.state = 'idle';
    this.idle.push(conn);
    if (conn.idleTimer) conn.idleTimer.refresh();
    else {
      conn.idleTimer = setTimeout(() => this.idleTimeout(conn), this.limits.idleTimeoutMs);
      conn.idleTimer.unref();
    }
  }

  private idleTimeout(conn: PooledConnection): void {
    if (conn.state !== 'idle') return;
    this.removeIdle(conn);
    // Not handed another message while it says goodbye.
    conn.state = 'closing';
    conn.smtp.quit();
  }

  private gone(conn: PooledConnection): void {
    this.open--;
    this.removeIdle(conn);
    const lease = conn.lease;
    if (!lease) return this.dispatch();
    // nodemailer reports the session over as soon as it has asked the socket to close, before
    // our FIN has left and long before the server has let go of it: the lease, which the server
    // counts as an open connection, goes back with the socket's 'close', and the room it held is
    // asked for then, not at the next retry.
    afterSocketClosed(conn.smtp, () => {
      lease.release();
      clearTimeout(this.gateRetry);
      this.gateRetry = undefined;
      this.dispatch();
    });
  }

  private removeIdle(conn: PooledConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  private failed(job: Job, attempt: FailedAttempt): void {
    const decision = onFailure(attempt);
    if (decision.action === 'fail') return job.reject(decision.error as SmtpError);
    job.requeues++;
    const timer = setTimeout(() => {
      this.requeued.delete(timer);
      this.queue.unshift(job);
      this.dispatch();
    }, decision.delayMs);
    this.requeued.set(timer, job);
  }
}

/**
 * Runs `then` once the session's socket is closed: both sides have closed it, so the server no
 * longer holds it (nodemailer destroys a socket the server does not close within 5 s).
 */
function afterSocketClosed(smtp: SMTPConnection, then: () => void): void {
  const socket = (smtp as unknown as SendStreamInternals)._socket;
  if (!socket || socket.closed) then();
  else socket.once('close', then);
}

/** How soon a pool with messages waiting asks the gate again after it had no room. */
const GATE_RETRY_MS = 250;

function poolClosed(): SmtpError {
  return Object.assign(new Error('Connection pool was closed'), { code: 'ECONNECTION' });
}
