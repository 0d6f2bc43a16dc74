// Per-connection guards that need the raw inbound bytes, which smtp-server's hooks never see:
//
// - SMTP smuggling (CVE-2023-51764/51765/51766). smtp-server ends DATA only at <CRLF>.<CRLF>, but
//   splits commands on \r?\n and passes a lone CR or LF through inside the message. Every byte the
//   command parser receives (plaintext, or decrypted after STARTTLS / on implicit TLS) goes through
//   the bare-newline scanner first; at the first bare CR, bare LF or NUL the chunk is dropped, the
//   client gets 521 and the connection closes, so nothing of that session is queued.
// - Minimum data rate (slowloris): while the client owes input (inside DATA or in the middle of a
//   command line), it must send at least minBytesPerSecond over each window, otherwise 421.
//
// The parser is reached through smtp-server internals (_parser, _createParser: the parser is
// replaced on STARTTLS); smtp-server is pinned to one version and internals.test.ts fails when an
// upgrade no longer has these.
import { initialScan, scanChunk, type ScanState, type Smuggling } from '../security/bare-newline.ts';

/** The part of smtp-server's SMTPStream the guard uses. */
interface CommandParser {
  write(chunk: unknown, ...rest: unknown[]): boolean;
  _dataMode: boolean;
  _remainder: string;
}

/** The part of smtp-server's SMTPConnection the guard uses. */
export interface GuardedConnection {
  id: string;
  session: object;
  _parser: CommandParser | false;
  _createParser(): CommandParser;
  _socket: { once(event: 'close', listener: () => void): unknown };
  send(code: number, message: string, context?: string | false): void;
  close(): void;
}

export interface GuardOptions {
  /** Bytes per second a client owing input must keep up; 0 disables the check. */
  minBytesPerSecond: () => number;
  windowMs: () => number;
  /** Called once, before the 521 reply, when smuggling is detected. */
  onSmuggling: (found: Smuggling) => { code: number; enhanced: string; message: string };
  onTooSlow: () => { code: number; enhanced: string; message: string };
}

export class ConnectionGuard {
  /** Scanner state over every byte the client sent in this connection. */
  scan: ScanState = initialScan;
  /** Bytes received since the last rate check. */
  private bytes = 0;
  /** Whether the client owed input at the last rate check. */
  private owedAtLastCheck = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly connection: GuardedConnection;
  private readonly options: GuardOptions;

  constructor(connection: GuardedConnection, options: GuardOptions) {
    this.connection = connection;
    this.options = options;
    if (connection._parser) this.wrap(connection._parser);
    const createParser = connection._createParser.bind(connection);
    connection._createParser = () => this.wrap(createParser());
    this.schedule();
    connection._socket.once('close', () => this.stop());
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private wrap(parser: CommandParser): CommandParser {
    const write = parser.write.bind(parser);
    parser.write = (chunk: unknown, ...rest: unknown[]) => {
      if (this.scan.found) return true;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : (chunk as Buffer);
      this.bytes += bytes.length;
      this.scan = scanChunk(this.scan, bytes);
      if (this.scan.found) {
        this.refuse(this.options.onSmuggling(this.scan.found));
        return true;
      }
      return write(chunk, ...rest);
    };
    return parser;
  }

  private refuse(reply: { code: number; enhanced: string; message: string }): void {
    this.stop();
    // context false: the enhanced code is in the text already, smtp-server must not add another.
    this.connection.send(reply.code, `${reply.enhanced} ${reply.message}`, false);
    this.connection.close();
  }

  private schedule(): void {
    const windowMs = this.options.windowMs();
    if (this.options.minBytesPerSecond() <= 0 || windowMs <= 0) return;
    this.timer = setTimeout(() => this.checkRate(), windowMs);
    this.timer.unref();
  }

  private checkRate(): void {
    const parser = this.connection._parser;
    if (!parser) return;
    const owed = parser._dataMode || parser._remainder.length > 0;
    const needed = (this.options.minBytesPerSecond() * this.options.windowMs()) / 1000;
    // Only a client that owed input for the whole window is measured: one waiting for our reply,
    // or idle between commands (the idle timeout's business), is not trickling.
    if (owed && this.owedAtLastCheck && this.bytes < needed) {
      this.refuse(this.options.onTooSlow());
      return;
    }
    this.owedAtLastCheck = owed;
    this.bytes = 0;
    this.schedule();
  }
}
