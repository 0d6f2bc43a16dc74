// The SMTP listeners. smtp-server owns the protocol; the hooks below gather inputs, ask the pure
// policies in policy/intake.ts, and turn a refusal into an SMTP error in one place (refuse()).
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { RuntimeConfig } from '../config/runtime.ts';
import type { ListenerConfig, RelayConfig } from '../config/types.ts';
import { durationMs } from '../config/duration.ts';
import { REPLIES, SmtpReplyError, isReply, type PolicyResult, type SmtpReply } from '../errors.ts';
import {
  connectPolicy,
  mailFromPolicy,
  rcptToPolicy,
  submissionLimitPolicy,
  type RelayPermissionInput,
} from '../policy/intake.ts';
import { intakeSwitchPolicy } from '../policy/intake-switch.ts';
import { verifyPassword } from '../../../contract/users.ts';
import type { RelayMetrics } from '../metrics/metrics.ts';
import { AuthThrottle } from '../security/auth-throttle.ts';
import type { AnvilPolicy } from '../security/anvil.ts';
import type { Smuggling } from '../security/bare-newline.ts';
import { ConnectionGuard, type GuardedConnection } from './connection-guard.ts';
import { fixSubmissionHeaders } from './headers.ts';
// Replaces smtp-server's byte-by-byte DATA parser with the native-scan one (same output).
import './data-stream.ts';
import { dsnFromSession, type SessionEnvelopeDsn } from '../outcomes/dsn-params.ts';
import type { DsnParams } from '../spool/record.ts';
import type { SpoolStream } from '../spool/stream.ts';
import { DataIntake } from './intake.ts';

export type ListenerName = 'smtp' | 'submission' | 'smtps';

/** What is known of a message when its DATA starts. */
export interface MessageFacts {
  from: string;
  recipients: string[];
  client: { address: string; helo: string; user?: string };
  secure: boolean;
  /** TLS version and cipher, for the Received header. */
  tls?: { version: string; cipher: string };
  /** RFC 3461 parameters of MAIL FROM and RCPT TO (smtp-server advertises DSN and parses them). */
  dsn?: DsnParams;
}

export interface AcceptedMessage extends MessageFacts {
  /** The message's bytes in the chunks they arrived in (spooled with one copy, not concatenated first). */
  body: readonly Buffer[];
  /**
   * A big message written to the spool as it arrived (IntakeDeps.openStream, which wrote its
   * Received header first); `body` is then empty.
   */
  streamed?: SpoolStream;
  /** The bytes are the ones the guard scanned (CRLF line ends only, no NUL), not rewritten since. */
  cleanLines: boolean;
}

/**
 * A message past this size is written to the spool as it arrives instead of gathered in memory.
 * Smaller ones share group commits (one fsync for many); a streamed one has a file and an fsync of
 * its own, as a full batch (1 MiB) has anyway (spool/store.ts FULL_BATCH_BYTES). Streaming 100 KB
 * messages cost more CPU than it saved (docs/benchmarks.md, Figures behind code choices).
 */
const STREAM_AFTER_BYTES = 256 * 1024;
/** Bytes of a streamed message waiting for the disk before its DATA stream is paused. */
const MAX_PENDING_BYTES = 1024 * 1024;

export interface IntakeDeps {
  runtime: () => RuntimeConfig;
  draining: () => boolean;
  /** The intake switch (config intake.open): false, the public listeners take no new mail. */
  intakeOpen: () => boolean;
  spoolHasSpace: () => boolean;
  /**
   * Starts writing a big message to the spool as it arrives, its Received header first; undefined
   * when it cannot (the message is then gathered in memory).
   */
  openStream?: (message: MessageFacts) => SpoolStream | undefined;
  /** Spools the message durably and queues it; resolves to the queue id. Rejects: nothing queued. */
  accept: (message: AcceptedMessage) => Promise<string>;
  /**
   * RateLimits with onExceed: reject: takes credit for one recipient, or names the limit that
   * refuses (asynchronous: a pool-wide limit is counted in the shared store).
   */
  admitRecipient?: (from: string, to: string) => Promise<string | undefined>;
  /** The suppression list's refusal of this recipient for this sender, if it is on the list. */
  suppressed?: (from: string, to: string) => SmtpReply | undefined;
  /**
   * Records a refusal by the suppression list (the `suppressed` event); the refusal is sent once
   * the returned promise settles, so the event is in the outbox before the client sees the 550.
   */
  recordSuppressed?: (from: string, to: string) => Promise<void>;
  metrics: RelayMetrics;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
}

/** Inbound sessions open now: total and per client address (for the connection limits). */
class SessionCounter {
  total = 0;
  private readonly byClient = new Map<string, number>();
  /** Session id -> client address, so a close is only counted for sessions that were counted. */
  private readonly open = new Map<string, string>();

  add(id: string, address: string): number {
    this.open.set(id, address);
    this.total++;
    const n = (this.byClient.get(address) ?? 0) + 1;
    this.byClient.set(address, n);
    return n;
  }

  has(id: string): boolean {
    return this.open.has(id);
  }

  remove(id: string): void {
    const address = this.open.get(id);
    if (address === undefined) return;
    this.open.delete(id);
    this.total--;
    const n = (this.byClient.get(address) ?? 1) - 1;
    if (n <= 0) this.byClient.delete(address);
    else this.byClient.set(address, n);
  }
}

/**
 * smtp-server pauses 100 ms before every greeting to catch clients that talk too early. Clients
 * in trustedNetworks skip the pause: the same steps as SMTPServer.connect(), with the greeting
 * sequence (connectionReady) started at once instead of from the timer.
 */
class RelaySmtpServer extends SMTPServer {
  isTrusted: (address: string) => boolean = () => false;
  /** Attaches the raw-byte guards (smuggling, data rate) to a new connection. */
  guard: (connection: GuardedConnection) => void = () => undefined;

  // Same steps as SMTPServer.connect(), with the guard attached before the first byte is parsed.
  override connect(socket: Socket, socketOptions?: Parameters<SMTPServer['connect']>[1]): void {
    const connection = new SMTPConnection(this, socket, socketOptions);
    this.guard(connection as unknown as GuardedConnection);
    // smtp-server advertises AUTH before STARTTLS (and only refuses it with 538 when used); the
    // relay neither offers nor accepts it on a connection that is not encrypted (RFC 4954 §4).
    const c = connection as unknown as { secure: boolean; _isSupported(command: string): boolean };
    const isSupported = c._isSupported.bind(connection);
    c._isSupported = (command) => (command === 'AUTH' && !c.secure ? false : isSupported(command));
    this.connections.add(connection);
    connection.on('error', (err: Error) => this.emit('error', err));
    if (!this.isTrusted(socket.remoteAddress ?? '')) {
      const server = this as unknown as { _onClientConnect(data: unknown): void };
      connection.on('connect', (data: unknown) => server._onClientConnect(data));
      connection.init();
      return;
    }
    connection._setListeners(() => connection.connectionReady());
  }
}

/** The anvil policy from the config's durations. */
function anvilPolicy(config: RelayConfig): AnvilPolicy {
  const t = config.auth.throttle;
  return {
    maxFailures: t.maxFailures,
    windowMs: durationMs(t.window),
    lockoutMs: durationMs(t.lockout),
    baseDelayMs: durationMs(t.baseDelay),
    maxDelayMs: durationMs(t.maxDelay),
  };
}

const SMUGGLING_REPLY = { 'bare-lf': 'bareLf', 'bare-cr': 'bareCr', nul: 'nulByte' } as const;

/** Listeners that take mail from users (RFC 6409 submission, RFC 8314 implicit TLS): AUTH required. */
const requiresAuth = (name: ListenerName) => name !== 'smtp';

export class Intake {
  private readonly deps: IntakeDeps;
  readonly sessions = new SessionCounter();
  private readonly servers: { name: ListenerName; server: RelaySmtpServer; listener: ListenerConfig }[] = [];
  /** AUTH failures per client IP and username, shared by all listeners. */
  readonly throttle: AuthThrottle;
  /** Sessions in which the guard found a bare CR/LF or NUL: nothing more of theirs is accepted. */
  private readonly smuggled = new WeakSet<object>();

  constructor(deps: IntakeDeps) {
    this.deps = deps;
    this.throttle = new AuthThrottle(anvilPolicy(deps.runtime().config));
  }

  /** Starts every enabled listener; resolves to the bound ports by listener name. */
  async listen(): Promise<Record<string, number>> {
    const { config } = this.deps.runtime();
    const ports: Record<string, number> = {};
    for (const name of ['smtp', 'submission', 'smtps'] as const) {
      const listener = config.listeners[name];
      if (!listener.enabled) continue;
      const server = this.build(name);
      this.servers.push({ name, server, listener });
      await new Promise<void>((resolve, reject) => {
        server.server.once('error', reject);
        server.listen(listener.port, listener.host, () => {
          server.server.off('error', reject);
          resolve();
        });
      });
      const address = server.server.address();
      ports[name] = typeof address === 'object' && address ? address.port : listener.port;
    }
    return ports;
  }

  /** New certificates and limits after a reload; sessions already open keep their certificate. */
  updateTls(): void {
    const { tls, config } = this.deps.runtime();
    this.throttle.policy = anvilPolicy(config);
    for (const { server } of this.servers) {
      Object.assign(server.options, this.limitOptions(config));
      if (tls) server.updateSecureContext({ key: tls.key, cert: tls.cert });
    }
  }

  /** smtp-server options that follow the config's limits (applied again on reload). */
  private limitOptions(config: RelayConfig): Partial<SMTPServerOptions> {
    return {
      size: config.limits.maxMessageSize,
      socketTimeout: durationMs(config.limits.idleTimeout),
      maxCommandLength: config.limits.maxLineLength,
      useXClient: config.trustedProxies.xclient.length > 0 ? [...config.trustedProxies.xclient] : false,
    };
  }

  /** Stops listening; open sessions may finish. */
  async close(graceMs: number): Promise<void> {
    await Promise.all(
      this.servers.map(({ server }) => {
        server.options.closeTimeout = graceMs;
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
  }

  private build(name: ListenerName): RelaySmtpServer {
    const rt = this.deps.runtime();
    const { config } = rt;
    // AUTH is never offered or accepted before TLS (RFC 4954 §4): no certificate, no AUTH.
    const authOffered = Boolean(rt.tls) && (config.auth.mode !== 'Disabled' || requiresAuth(name));
    const options: SMTPServerOptions = {
      name: config.hostname,
      banner: 'mailfleet relay',
      secure: name === 'smtps',
      ...this.limitOptions(config),
      // PROXY protocol only from the listed load balancers; a header from anyone else is refused.
      useProxy:
        config.trustedProxies.proxyProtocol.length > 0 ? [...config.trustedProxies.proxyProtocol] : false,
      // PTR lookups cost a DNS round trip per session and decide nothing here.
      disableReverseLookup: true,
      authOptional: true,
      authMethods: ['PLAIN', 'LOGIN'],
      disabledCommands: authOffered ? [] : ['AUTH'],
      allowInsecureAuth: false,
      hideSTARTTLS: !rt.tls,
      // smtp-server hides DSN unless told: its parameters are kept, passed on and honoured
      // (outcomes/dsn-params.ts), so the extension is advertised (RFC 3461 §4).
      hideDSN: false,
      logger: false,
      onConnect: (session, cb) => this.onConnect(name, session, cb),
      onClose: (session) => this.onClose(name, session),
      onAuth: (auth, session, cb) => this.onAuth(name, auth.username ?? '', auth.password ?? '', session, cb),
      onMailFrom: (address, session, cb) =>
        cb(
          this.smuggledReply(session) ??
            this.check(intakeSwitchPolicy({ open: this.deps.intakeOpen(), stage: 'mail' })) ??
            this.check(this.mailFrom(name, address.address, session)),
        ),
      onRcptTo: (address, session, cb) => {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const refused =
          this.smuggledReply(session) ??
          this.check(
            rcptToPolicy({
              ...this.permission(name, session),
              address: address.address,
              accepted: session.envelope.rcptTo.length,
              maxRecipients: this.deps.runtime().config.limits.maxRecipients,
            }),
          );
        if (refused) return cb(refused);
        const suppressed = this.check(this.deps.suppressed?.(from, address.address) ?? { ok: true });
        if (suppressed) {
          // The event first (docs/events.md): a relay killed after the 550 has it in its outbox.
          // Its failure to be written is counted by the outbox and costs the event, not the reply.
          const recorded = this.deps.recordSuppressed?.(from, address.address) ?? Promise.resolve();
          void recorded.then(
            () => cb(suppressed),
            () => cb(suppressed),
          );
          return;
        }
        // Limits last: a recipient refused for another reason takes no credit from them.
        if (!this.deps.admitRecipient) return cb(null);
        this.deps.admitRecipient(from, address.address).then(
          (limitedBy) => cb(this.check(submissionLimitPolicy({ limitedBy }))),
          (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
        );
      },
      onData: (stream, session, cb) => this.onData(name, stream, session, cb),
    };
    if (rt.tls) {
      options.key = rt.tls.key;
      options.cert = rt.tls.cert;
      options.minVersion = config.tls?.minVersion ?? 'TLSv1.2';
    }
    const server = new RelaySmtpServer(options);
    server.isTrusted = (address) => this.deps.runtime().trusted.has(address);
    server.guard = (connection) => this.guard(connection);
    server.on('error', (err: Error) =>
      this.deps.log('warn', 'smtp error', { listener: name, err: err.message }),
    );
    return server;
  }

  private onData(
    name: ListenerName,
    stream: NodeJS.ReadableStream,
    session: SMTPServerSession,
    cb: (err: Error | null, message?: string) => void,
  ): void {
    const { config: current } = this.deps.runtime();
    const submitted = requiresAuth(name) || Boolean(session.user);
    const facts: MessageFacts = {
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      recipients: session.envelope.rcptTo.map((r) => r.address),
      client: { address: session.remoteAddress, helo: session.hostNameAppearsAs ?? '' },
      secure: session.secure,
    };
    const cipher = session.tlsOptions as { name?: string; version?: string } | false | undefined;
    if (session.secure && cipher) facts.tls = { version: cipher.version ?? '', cipher: cipher.name ?? '' };
    if (session.user) facts.client.user = String(session.user);
    const dsn = dsnFromSession(session.envelope as unknown as SessionEnvelopeDsn);
    if (dsn) facts.dsn = dsn;
    // A submission's header is rebuilt from the whole message (below): it is never streamed.
    const openStream = this.deps.openStream;
    const intake = new DataIntake<SpoolStream>({
      open: submitted || !openStream ? undefined : () => openStream(facts),
      streamAfter: STREAM_AFTER_BYTES,
      maxPending: MAX_PENDING_BYTES,
    });
    let ended = false;
    // Not scanned again here: the guard scanned every byte of the session before the parser
    // saw it, and dot-unstuffing only removes dots, so these bytes have CRLF line ends and no
    // NUL (a session where the guard found one never gets here: its chunk was dropped).
    stream.on('data', (chunk: Buffer) => {
      if (intake.push(chunk)) return;
      // The disk is behind: the parser waits (and the socket with it) rather than memory filling.
      stream.pause();
      intake.drained(() => stream.resume());
    });
    // The client went away mid-message: smtp-server destroys the stream, which never ends.
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (!ended) void intake.abort();
    });
    stream.on('end', () => {
      ended = true;
      const smuggled = this.smuggledReply(session);
      if (smuggled) {
        void intake.abort();
        return cb(smuggled);
      }
      if ((stream as { sizeExceeded?: boolean }).sizeExceeded) {
        void intake.abort();
        return cb(this.refuse(REPLIES.messageTooBig, 'messageTooBig'));
      }
      // Checked in the tick accept() starts: a message is either refused here or counted in
      // flight until it is queued (relay.ts), never acknowledged after the switch closed.
      const closed = this.check(intakeSwitchPolicy({ open: this.deps.intakeOpen(), stage: 'data' }));
      if (closed) {
        void intake.abort();
        return cb(closed);
      }
      const started = performance.now();
      const gathered = intake.result();
      const message: AcceptedMessage = {
        ...facts,
        body: [],
        // A submission's header is rebuilt: its delivery scans it.
        cleanLines: !submitted,
      };
      if ('streamed' in gathered) message.streamed = gathered.streamed;
      else if (submitted)
        // RFC 6409 §8.3/8.4: a submission server may add a missing Date and Message-ID.
        message.body = [
          fixSubmissionHeaders(Buffer.concat(gathered.chunks), {
            messageId: `<${Date.now().toString(36)}.${randomBytes(8).toString('hex')}@${current.hostname}>`,
            date: new Date(),
            removeClientHeaders: current.headers.removeClientHeadersOnSubmission,
          }),
        ];
      else message.body = gathered.chunks;
      this.deps.accept(message).then(
        (id) => {
          this.deps.metrics.acceptLatency.observe((performance.now() - started) / 1000);
          cb(null, `2.0.0 Ok: queued as ${id}`);
        },
        (err: unknown) => {
          this.deps.metrics.spoolWriteFailures.inc();
          this.deps.log('error', 'spool write failed', { err: String(err) });
          cb(this.refuse(REPLIES.spoolWriteFailed, 'spoolWriteFailed'));
        },
      );
    });
  }

  private guard(connection: GuardedConnection): void {
    new ConnectionGuard(connection, {
      minBytesPerSecond: () => this.deps.runtime().config.limits.minDataRate,
      windowMs: () => durationMs(this.deps.runtime().config.limits.dataRateWindow),
      onSmuggling: (found: Smuggling) => {
        this.smuggled.add(connection.session);
        const reason = SMUGGLING_REPLY[found];
        this.deps.metrics.rejections.inc({ code: '521', reason });
        this.deps.log('warn', 'bare newline or NUL from client, session closed', {
          session: connection.id,
          found,
        });
        return REPLIES[reason];
      },
      onTooSlow: () => {
        this.deps.metrics.rejections.inc({ code: '421', reason: 'dataRateTooLow' });
        this.deps.log('warn', 'client below limits.minDataRate, session closed', { session: connection.id });
        return REPLIES.dataRateTooLow;
      },
    });
  }

  /** The 521 for any command of a session the guard caught smuggling (its connection is closing). */
  private smuggledReply(session: SMTPServerSession): SmtpReplyError | null {
    return this.smuggled.has(session) ? new SmtpReplyError(REPLIES.bareLf) : null;
  }

  private onAuth(
    name: ListenerName,
    username: string,
    password: string,
    session: SMTPServerSession,
    cb: (err: Error | null | undefined, response?: { user: string }) => void,
  ): void {
    const address = session.remoteAddress;
    const verdict = this.throttle.check(address, username);
    const failed = () => {
      this.deps.metrics.authFailures.inc({ listener: name });
      const locked = this.throttle.fail(address, username);
      if (locked > 0) {
        this.deps.metrics.authLockouts.inc(locked);
        this.deps.log('warn', 'AUTH lockout', { client: address, username });
      }
      cb(this.refuse(REPLIES.authFailed, 'authFailed'));
    };
    if (verdict.locked) {
      // Refused without looking at the password: a locked-out guesser learns nothing.
      this.deps.metrics.authFailures.inc({ listener: name });
      return cb(this.refuse(REPLIES.authLocked, 'authLocked'));
    }
    // Anvil: the reply to an attempt after earlier failures waits, growing with each failure.
    setTimeout(() => {
      verifyPassword(this.deps.runtime().users, username, password).then(
        (ok) => (ok ? cb(null, { user: username }) : failed()),
        () => failed(),
      );
    }, verdict.delayMs).unref();
  }

  private onConnect(name: ListenerName, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const { config } = this.deps.runtime();
    const fromClient = this.sessions.add(session.id, session.remoteAddress);
    this.deps.metrics.sessionsActive.inc({ listener: name });
    const result = connectPolicy({
      draining: this.deps.draining(),
      sessions: this.sessions.total,
      sessionsFromClient: fromClient,
      maxConnections: config.limits.maxConnections,
      maxConnectionsPerClient: config.limits.maxConnectionsPerClient,
    });
    cb(
      this.check(result) ??
        this.check(intakeSwitchPolicy({ open: this.deps.intakeOpen(), stage: 'connect' })),
    );
  }

  private onClose(name: ListenerName, session: SMTPServerSession): void {
    if (this.sessions.has(session.id)) {
      this.deps.metrics.sessionsActive.dec({ listener: name });
      this.deps.metrics.sessions.inc({ listener: name, tls: String(Boolean(session.secure)) });
    }
    this.sessions.remove(session.id);
  }

  private permission(name: ListenerName, session: SMTPServerSession): RelayPermissionInput {
    const rt = this.deps.runtime();
    return {
      authenticatedUser: session.user ? String(session.user) : undefined,
      // After XCLIENT from a trusted proxy, remoteAddress is the client the proxy presents.
      clientInAllowedNetworks: rt.allowed.has(session.remoteAddress),
      authMode: rt.config.auth.mode,
      listenerRequiresAuth: requiresAuth(name),
    };
  }

  private mailFrom(name: ListenerName, address: string, session: SMTPServerSession): PolicyResult {
    const rt = this.deps.runtime();
    const user = session.user ? String(session.user) : undefined;
    return mailFromPolicy({
      ...this.permission(name, session),
      address,
      sendingDomains: rt.config.sendingDomains,
      userSenderDomains: user === undefined ? undefined : rt.config.auth.userSenderDomains[user],
      spoolHasSpace: this.deps.spoolHasSpace(),
      draining: this.deps.draining(),
    });
  }

  /** The one place a policy result becomes an SMTP reply. */
  private check(result: PolicyResult): SmtpReplyError | null {
    if (!isReply(result)) return null;
    const reason =
      (Object.keys(REPLIES) as (keyof typeof REPLIES)[]).find((k) => REPLIES[k] === result) ?? 'other';
    return this.refuse(result, reason);
  }

  private refuse(reply: SmtpReply, reason: string): SmtpReplyError {
    this.deps.metrics.rejections.inc({ code: String(reply.code), reason });
    return new SmtpReplyError(reply);
  }
}
