// The return-path listener: the MX of the pool's return-path domains. It is not a mailbox and
// never relays: RCPT is accepted only for a VERP address that verifies under the pool's key (550
// 5.1.1 otherwise, RFC 3463 "bad destination mailbox"), and each accepted message is read as a
// bounce or complaint about the message and recipient its address names. The 250 is sent after
// the report was recorded, so a sending MTA whose report we could not record tries again.
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { REPLIES, SmtpReplyError, type SmtpReply } from '../errors.ts';
import { verifyVerp, type VerpFields } from '../return-path/verp.ts';
import type { ReturnPaths } from '../return-path/envelopes.ts';

export interface ReturnPathListenerDeps {
  /** The key and domains in force (replaced on reload); undefined: every RCPT is refused. */
  returnPaths(): ReturnPaths | undefined;
  hostname(): string;
  maxMessageSize(): number;
  /** TLS key and certificate for STARTTLS, when the relay has them. */
  tls(): { key: Buffer; cert: Buffer } | undefined;
  /** Records one report about one VERP address; a rejection makes the DATA reply 451. */
  report(token: VerpFields, raw: Buffer): Promise<void>;
  /** A refused RCPT or DATA, by reason (metrics). */
  refused(reason: 'not-verp' | 'unknown-domain' | 'bad-signature' | 'too-big' | 'not-recorded'): void;
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
}

type Session = { envelope: { rcptTo: { address: string }[] }; verp?: VerpFields[] };

const reply = (r: SmtpReply) => new SmtpReplyError(r);

export class ReturnPathListener {
  private readonly deps: ReturnPathListenerDeps;
  private server: SMTPServer | undefined;

  constructor(deps: ReturnPathListenerDeps) {
    this.deps = deps;
  }

  async listen(host: string, port: number): Promise<number> {
    const tls = this.deps.tls();
    const options: SMTPServerOptions = {
      name: this.deps.hostname(),
      banner: 'mailfleet return path',
      size: this.deps.maxMessageSize(),
      disableReverseLookup: true,
      authOptional: true,
      // Nobody logs in to an MX: no AUTH at all; STARTTLS when the relay has a certificate.
      disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      hideSTARTTLS: !tls,
      ...(tls ? { key: tls.key, cert: tls.cert } : {}),
      logger: false,
      onRcptTo: (address, session, cb) => {
        const paths = this.deps.returnPaths();
        const verdict = paths
          ? verifyVerp(paths.key, address.address, (rp) => paths.byReturnPath.get(rp) ?? [])
          : ({ ok: false, reason: 'unknown-domain' } as const);
        if (!verdict.ok) {
          this.deps.refused(verdict.reason);
          return cb(reply(REPLIES.notReturnPath));
        }
        const s = session as unknown as Session;
        (s.verp ??= []).push(verdict.fields);
        cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const s = session as unknown as Session;
          const tokens = s.verp ?? [];
          s.verp = [];
          if ((stream as { sizeExceeded?: boolean }).sizeExceeded) {
            this.deps.refused('too-big');
            return cb(reply(REPLIES.messageTooBig));
          }
          const raw = Buffer.concat(chunks);
          Promise.all(tokens.map((t) => this.deps.report(t, raw))).then(
            () => cb(null, 'Report recorded'),
            (err: unknown) => {
              this.deps.refused('not-recorded');
              this.deps.log('error', 'return-path report not recorded', { err: String(err) });
              cb(reply(REPLIES.feedbackNotRecorded));
            },
          );
        });
      },
      onMailFrom: (_address, session, cb) => {
        (session as unknown as Session).verp = [];
        cb();
      },
    };
    this.server = new SMTPServer(options);
    const server = this.server;
    server.on('error', (err) => this.deps.log('warn', 'return-path listener', { err: err.message }));
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    const server = this.server;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}
