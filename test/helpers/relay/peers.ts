// Real peers for relay integration tests: the relay as a child process, Postfix's smtp-sink as
// upstream, a scripted smtp-server upstream, and nodemailer as client. All on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createTransport } from 'nodemailer';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const TEST_CERT = join(ROOT, 'relay/examples/test-cert.pem');
export const TEST_KEY = join(ROOT, 'relay/examples/test-key.pem');
/** Management tokens every test relay accepts (files in test/fixtures/admin-tokens; public, tests only). */
export const TEST_TOKENS = {
  read: 'test-read-token-not-secret-0001',
  admin: 'test-admin-token-not-secret-0001',
};
export const TEST_TOKEN_FILES = [
  { name: 'test-read', role: 'read', file: join(ROOT, 'test/fixtures/admin-tokens/read') },
  { name: 'test-admin', role: 'admin', file: join(ROOT, 'test/fixtures/admin-tokens/admin') },
];

// One implementation for every test and for `npm start` (dev/); re-exported for the many callers here.
export { freePort, waitFor } from '../../../dev/net.ts';
import { waitFor } from '../../../dev/net.ts';
export { spawnDnsmasq, startSink, stopProcess, tempDir } from '../../../dev/peers.ts';
export type { Sink } from '../../../dev/peers.ts';
import { stopProcess, tempDir } from '../../../dev/peers.ts';

export type RelayPorts = Record<string, number> & { smtp: number; http: number };

export interface RelayProcess {
  proc: ChildProcess;
  configPath: string;
  spoolDir: string;
  ports: RelayPorts;
  logs: string[];
  /** http://127.0.0.1:<management port> */
  base: string;
  /** A management request with the admin test token (unless init sets its own authorization). */
  http(path: string, init?: RequestInit): Promise<Response>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A relay config for tests: ephemeral ports, a temp spool, smarthost `upstreamPort`. */
export function relayConfig(spoolDir: string, upstreamPort: number, over: Record<string, unknown> = {}) {
  return {
    hostname: 'relay.test',
    listeners: { smtp: { enabled: true, host: '127.0.0.1', port: 0 } },
    allowedNetworks: ['127.0.0.0/8'],
    trustedNetworks: ['127.0.0.0/8'],
    sendingDomains: [{ domain: 'example.com' }],
    delivery: {
      mode: 'smarthost',
      ehloName: 'relay.test',
      smarthost: { host: '127.0.0.1', port: upstreamPort, tls: 'starttls-opportunistic' },
      connectTimeout: '2s',
      commandTimeout: '5s',
    },
    retry: { firstRetry: '1s', maxBackoff: '2s', maxQueueLifetime: '1h' },
    spool: { dir: spoolDir, minFreeBytes: 0 },
    http: { host: '127.0.0.1', port: 0, tokens: TEST_TOKEN_FILES },
    drainTimeout: '10s',
    ...over,
  };
}

export async function writeConfig(path: string, config: unknown): Promise<void> {
  await writeFile(path, stringify(config));
}

/** Starts `mailfleet relay` and waits for its "relay started" log line (which carries the ports). */
export async function startRelay(
  config: Record<string, unknown>,
  configPath?: string,
  env: Record<string, string> = {},
): Promise<RelayProcess> {
  const dir = configPath ? undefined : await tempDir('relaycfg');
  const path = configPath ?? join(dir!, 'relay.yaml');
  await writeConfig(path, config);
  const proc = spawn(process.execPath, [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', path], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MAILFLEET_WATCH_INTERVAL_MS: '200', ...env },
  });
  const logs: string[] = [];
  let ports: RelayPorts | undefined;
  let buffered = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      logs.push(line);
      if (line.includes('"relay started"')) ports = (JSON.parse(line) as { ports: RelayPorts }).ports;
    }
  });
  proc.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
  await waitFor(() => ports !== undefined || proc.exitCode !== null, 60_000, 'relay to start');
  if (!ports) throw new Error(`relay exited: ${logs.join('\n')}`);
  const base = `http://127.0.0.1:${ports.http}`;
  const relay: RelayProcess = {
    proc,
    configPath: path,
    spoolDir: (config.spool as { dir: string }).dir,
    ports,
    logs,
    base,
    http: (p, init = {}) =>
      fetch(base + p, {
        ...init,
        headers: {
          authorization: `Bearer ${TEST_TOKENS.admin}`,
          ...(init.headers as Record<string, string>),
        },
      }),
    metric: async (name, labels = {}) => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return metricValue(text, name, labels);
    },
    stop: (signal = 'SIGTERM') => stopProcess(proc, signal),
  };
  return relay;
}

/** Sum of the samples of `name` whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

export interface SendResult {
  ok: boolean;
  response: string;
  code?: number;
}

/** One message through nodemailer (no pool). */
export async function sendMessage(
  port: number,
  message: { from: string; to: string[]; raw: string | Buffer },
  options: Record<string, unknown> = {},
): Promise<SendResult> {
  const transport = createTransport({ host: '127.0.0.1', port, ignoreTLS: true, ...options });
  try {
    const info = await transport.sendMail({
      envelope: { from: message.from, to: message.to },
      raw: message.raw,
    });
    return { ok: true, response: info.response };
  } catch (err) {
    const e = err as { response?: string; responseCode?: number; message: string };
    const result: SendResult = { ok: false, response: e.response ?? e.message };
    if (e.responseCode !== undefined) result.code = e.responseCode;
    return result;
  } finally {
    transport.close();
  }
}

/**
 * One SMTP transaction with parameters as written (`MAIL FROM:<from> RET=FULL`, `RCPT TO:<to>
 * NOTIFY=NEVER`), which nodemailer cannot give per recipient. Returns every reply, last the DATA one.
 * `raw` undefined: the session ends after the RCPT replies (QUIT), no DATA.
 */
export async function smtpTransaction(
  port: number,
  mail: string,
  rcpts: string[],
  raw: string | undefined,
  host = '127.0.0.1',
): Promise<string[]> {
  const socket = createConnection(port, host);
  let buffer = '';
  // Closed or failed (refused, reset): no reply will come, the transaction rejects.
  let ended: Error | undefined;
  const waiting: (() => void)[] = [];
  const wake = () => waiting.splice(0).forEach((w) => w());
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    wake();
  });
  socket.on('error', (err) => {
    ended = err;
    wake();
  });
  socket.on('close', () => {
    ended ??= new Error(`${host}:${port} closed the connection`);
    wake();
  });
  const reply = async (): Promise<string> => {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(buffer);
      if (m) {
        buffer = buffer.slice(m[0].length);
        return m[0];
      }
      if (ended) throw ended;
      await new Promise<void>((r) => waiting.push(r));
    }
  };
  const command = (line: string) => {
    socket.write(`${line}\r\n`);
    return reply();
  };
  try {
    const replies = [await reply(), await command('EHLO client.test'), await command(`MAIL FROM:${mail}`)];
    for (const r of rcpts) replies.push(await command(`RCPT TO:${r}`));
    if (raw !== undefined) {
      replies.push(await command('DATA'));
      socket.write(`${raw.replace(/\r?\n/g, '\r\n')}\r\n.\r\n`);
      replies.push(await reply());
    }
    await command('QUIT');
    return replies;
  } finally {
    socket.destroy();
  }
}

export function rawMessage(id: string, extra = ''): string {
  return `From: a@example.com\r\nTo: b@example.org\r\nSubject: test ${id}\r\nMessage-ID: <${id}@example.com>\r\n\r\nbody of ${id}\r\n${extra}`;
}

export interface ScriptedUpstream {
  port: number;
  /** Messages accepted: envelope (with the RFC 3461 parameters smtp-server parsed) and raw bytes. */
  received: {
    from: string;
    to: string[];
    raw: string;
    dsn?: { ret?: string | null; envid?: string | null };
    rcptDsn: ({ notify?: string[]; orcpt?: string } | undefined)[];
  }[];
  /** Set per test: decide the reply to RCPT TO / DATA; return undefined to accept. */
  onRcpt: (to: string, attempt: number) => { code: number; message: string } | 'drop' | undefined;
  onData: (raw: string, attempt: number) => { code: number; message: string } | 'drop' | 'hang' | undefined;
  attempts: number;
  stop(): Promise<void>;
}

/** An in-process smtp-server whose replies the test scripts (4xx, 5xx, drops, hangs). */
export async function startScripted(options: Partial<SMTPServerOptions> = {}): Promise<ScriptedUpstream> {
  const upstream: ScriptedUpstream = {
    port: 0,
    received: [],
    onRcpt: () => undefined,
    onData: () => undefined,
    attempts: 0,
    stop: async () => undefined,
  };
  const fail = (reply: { code: number; message: string }) =>
    Object.assign(new Error(reply.message), { responseCode: reply.code });
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: options.secure || options.key ? [] : ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    ...options,
    onRcptTo(address, session, cb) {
      const r = upstream.onRcpt(address.address, upstream.attempts);
      if (r === 'drop') return (session as unknown as { _socket?: { destroy(): void } })._socket?.destroy();
      cb(r ? fail(r) : null);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        upstream.attempts++;
        const raw = Buffer.concat(chunks).toString('latin1');
        const r = upstream.onData(raw, upstream.attempts);
        if (r === 'hang') return;
        if (r === 'drop') return cb(Object.assign(new Error('dropped'), { responseCode: 421 }));
        if (r) return cb(fail(r));
        upstream.received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((x) => x.address),
          raw,
          ...(session.envelope.dsn ? { dsn: { ...session.envelope.dsn } } : {}),
          rcptDsn: session.envelope.rcptTo.map((x) => (x.dsn ? { ...x.dsn } : undefined)),
        });
        cb(null);
      });
    },
  });
  // A relay killed mid-session resets its connection: not the test's failure.
  server.on('error', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.server.address();
  upstream.port = typeof address === 'object' && address ? address.port : 0;
  upstream.stop = () =>
    new Promise((r) => {
      server.close(() => r());
      for (const c of (server as unknown as { connections: Set<{ close(): void }> }).connections) c.close();
    });
  return upstream;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function readAccounting(spoolDir: string): Promise<Record<string, unknown>[]> {
  try {
    const text = await readFile(join(spoolDir, 'accounting.jsonl'), 'utf8');
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}

/** Writes a pool handoff secret into `dir` and returns its path (every relay of a pool shares it). */
export async function writeHandoffSecret(
  dir: string,
  secret = 'test-pool-secret-0123456789abcdef',
): Promise<string> {
  const path = join(dir, 'handoff-secret');
  await writeFile(path, `${secret}\n`);
  return path;
}

/**
 * Submits `count` messages, `concurrency` pooled connections, one recipient each, Message-ID
 * `<prefix-i@example.com>`; returns the ids whose DATA got a 250 (the acknowledged ones).
 */
export async function submitMany(
  port: number,
  count: number,
  prefix: string,
  recipient: (i: number) => string = (i) => `r${i}@example.org`,
  concurrency = 4,
  host = '127.0.0.1',
  /** Receives why each message that was not acknowledged was refused. */
  failures: string[] = [],
): Promise<string[]> {
  const transport = createTransport({
    host,
    port,
    ignoreTLS: true,
    pool: true,
    maxConnections: concurrency,
    maxMessages: Infinity,
  });
  const acknowledged: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const id = `${prefix}-${i}`;
      try {
        await transport.sendMail({
          envelope: { from: 'a@example.com', to: [recipient(i)] },
          raw: rawMessage(id),
        });
        acknowledged.push(id);
      } catch (err) {
        // not acknowledged: the client still holds it, not part of the relay's promise
        failures.push(`${id}: ${(err as Error).message}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    transport.close();
  }
  return acknowledged;
}

/** Message-IDs (`<id@example.com>` -> id) of the messages an upstream accepted, with repeat counts. */
export function deliveredIds(received: { raw: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of received) {
    const id = /^Message-ID: <([^@>]+)@/im.exec(m.raw)?.[1] ?? '';
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Prints a test's message ledger as one `# ledger <name>: k=v ...` line (the figures a report quotes). */
export function ledger(name: string, figures: Record<string, number>): void {
  process.stdout.write(
    `# ledger ${name}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}\n`,
  );
}
