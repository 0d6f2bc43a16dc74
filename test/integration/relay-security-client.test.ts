// A raw SMTP client for the security suites (byte-exact writes, one reply at a time), and its own
// small self-test against a scripted server. Lives beside the suites that use it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startScripted } from '../helpers/relay/peers.ts';

export class RawSmtp {
  socket: Socket | TLSSocket;
  private buffer = '';
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    this.listen(socket);
  }

  private listen(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('latin1');
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  /** Connects and returns the client with the greeting read (or the refusal, see `greeting`). */
  static async open(
    port: number,
    options: { tls?: boolean } = {},
  ): Promise<{ client: RawSmtp; greeting: string }> {
    const socket = options.tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : netConnect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new RawSmtp(socket);
    return { client, greeting: await client.reply() };
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Sends one command line (CRLF added) and returns the reply. */
  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** The next complete reply (all lines), or '' if the connection closed first. */
  async reply(timeoutMs = 10000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        return m[0];
      }
      if (this.closed) return '';
      if (Date.now() > deadline)
        throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 100);
      });
      this.waiter = undefined;
    }
  }

  async starttls(): Promise<string> {
    const reply = await this.command('STARTTLS');
    if (!reply.startsWith('220')) return reply;
    const raw = this.socket as Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tlsConnect({ socket: raw, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.listen(secure);
    return reply;
  }

  /** Resolves once the server closed the connection. */
  async waitClosed(timeoutMs = 10000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** True when the text holds a CR not followed by LF or an LF not preceded by CR. */
export function hasBareNewline(text: string): boolean {
  return /\r(?!\n)|(?<!\r)\n/.test(text);
}

test('RawSmtp reads multi-line replies one at a time', async () => {
  const upstream = await startScripted();
  try {
    const { client, greeting } = await RawSmtp.open(upstream.port);
    assert.match(greeting, /^220 /);
    const ehlo = await client.command('EHLO client.test');
    assert.match(ehlo, /^250-/);
    assert.match(ehlo, /\n250 [^\n]*\n$/);
    assert.match(await client.command('NOOP'), /^250 /);
    client.close();
  } finally {
    await upstream.stop();
  }
});

test('hasBareNewline finds lone CR and LF only', () => {
  assert.equal(hasBareNewline('a\r\nb\r\n'), false);
  assert.equal(hasBareNewline('a\nb'), true);
  assert.equal(hasBareNewline('a\rb'), true);
});
