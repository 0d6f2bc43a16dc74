// The SMTP listeners. smtp-server owns the protocol; the hooks below gather inputs, ask the pure
// policies in policy/intake.ts, and turn a refusal into an SMTP error in one place (refuse()).
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Socket } from 'node:net';
import type { RuntimeConfig } from '../config/runtime.ts';
import type { ListenerConfig } from '../config/types.ts';
import { REPLIES, SmtpReplyError, isReply, type PolicyResult, type SmtpReply } from '../errors.ts';
import { connectPolicy, mailFromPolicy, rcptToPolicy } from '../policy/intake.ts';
import { verifyPassword } from '../policy/users.ts';
import type { RelayMetrics } from '../metrics/metrics.ts';

export type ListenerName = 'smtp' | 'submission' | 'smtps';

export interface AcceptedMessage {
  from: string;
  recipients: string[];
  body: Buffer;
  client: { address: string; helo: string; user?: string };
  secure: boolean;
}

export interface IntakeDeps {
  runtime: () => RuntimeConfig;
  draining: () => boolean;
  spoolHasSpace: () => boolean;
  /** Spools the message durably and queues it; resolves to the queue id. Rejects: nothing queued. */
  accept: (message: AcceptedMessage) => Promise<string>;
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

  override connect(socket: Socket, socketOptions?: Parameters<SMTPServer['connect']>[1]): void {
    if (!this.isTrusted(socket.remoteAddress ?? '')) return super.connect(socket, socketOptions);
    const connection = new SMTPConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this.emit('error', err));
    connection._setListeners(() => connection.connectionReady());
  }
}

export class Intake {
  private readonly deps: IntakeDeps;
  readonly sessions = new SessionCounter();
  private readonly servers: { name: ListenerName; server: RelaySmtpServer; listener: ListenerConfig }[] = [];

  constructor(deps: IntakeDeps) {
    this.deps = deps;
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

  /** New certificates after a reload; sessions already open keep theirs. */
  updateTls(): void {
    const tls = this.deps.runtime().tls;
    if (!tls) return;
    for (const { server } of this.servers) server.updateSecureContext({ key: tls.key, cert: tls.cert });
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
    const authDisabled = config.auth.mode === 'Disabled';
    const options: SMTPServerOptions = {
      name: config.hostname,
      banner: 'mailfleet relay',
      secure: name === 'smtps',
      size: config.limits.maxMessageSize,
      // PTR lookups cost a DNS round trip per session and decide nothing here.
      disableReverseLookup: true,
      authOptional: true,
      authMethods: ['PLAIN', 'LOGIN'],
      disabledCommands: authDisabled ? ['AUTH'] : [],
      // Without a certificate there is nothing to protect credentials with (lab setups only).
      allowInsecureAuth: !rt.tls,
      hideSTARTTLS: !rt.tls,
      logger: false,
      onConnect: (session, cb) => this.onConnect(name, session, cb),
      onClose: (session) => this.onClose(name, session),
      onAuth: (auth, session, cb) => {
        const users = this.deps.runtime().users;
        void verifyPassword(users, auth.username ?? '', auth.password ?? '').then(
          (ok) =>
            ok ? cb(null, { user: auth.username }) : cb(this.refuse(REPLIES.authFailed, 'authFailed')),
          () => cb(this.refuse(REPLIES.authFailed, 'authFailed')),
        );
      },
      onMailFrom: (address, session, cb) => cb(this.check(this.mailFrom(address.address, session))),
      onRcptTo: (address, session, cb) =>
        cb(
          this.check(
            rcptToPolicy({
              address: address.address,
              accepted: session.envelope.rcptTo.length,
              maxRecipients: this.deps.runtime().config.limits.maxRecipients,
            }),
          ),
        ),
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          if ((stream as { sizeExceeded?: boolean }).sizeExceeded) {
            return cb(this.refuse(REPLIES.messageTooBig, 'messageTooBig'));
          }
          const started = performance.now();
          const message: AcceptedMessage = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            recipients: session.envelope.rcptTo.map((r) => r.address),
            body: Buffer.concat(chunks),
            client: { address: session.remoteAddress, helo: session.hostNameAppearsAs ?? '' },
            secure: session.secure,
          };
          if (session.user) message.client.user = String(session.user);
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
      },
    };
    if (rt.tls) {
      options.key = rt.tls.key;
      options.cert = rt.tls.cert;
      options.minVersion = config.tls?.minVersion ?? 'TLSv1.2';
    }
    const server = new RelaySmtpServer(options);
    server.isTrusted = (address) => this.deps.runtime().trusted.has(address);
    server.on('error', (err: Error) =>
      this.deps.log('warn', 'smtp error', { listener: name, err: err.message }),
    );
    return server;
  }

  private onConnect(name: ListenerName, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const { config } = this.deps.runtime();
    const fromClient = this.sessions.add(session.id, session.remoteAddress);
    this.deps.metrics.sessions.inc({ listener: name });
    this.deps.metrics.sessionsActive.inc({ listener: name });
    const result = connectPolicy({
      draining: this.deps.draining(),
      sessions: this.sessions.total,
      sessionsFromClient: fromClient,
      maxConnections: config.limits.maxConnections,
      maxConnectionsPerClient: config.limits.maxConnectionsPerClient,
    });
    cb(this.check(result));
  }

  private onClose(name: ListenerName, session: SMTPServerSession): void {
    if (this.sessions.has(session.id)) this.deps.metrics.sessionsActive.dec({ listener: name });
    this.sessions.remove(session.id);
  }

  private mailFrom(address: string, session: SMTPServerSession): PolicyResult {
    const rt = this.deps.runtime();
    return mailFromPolicy({
      address,
      authenticatedUser: session.user ? String(session.user) : undefined,
      clientInAllowedNetworks: rt.allowed.has(session.remoteAddress),
      authMode: rt.config.auth.mode,
      sendingDomains: rt.config.sendingDomains,
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
