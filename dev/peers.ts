// Stand-ins for the Internet on 127.0.0.1, for `npm start` and the tests: Postfix's smtp-sink as
// the receiving side, a dnsmasq answering only what it is told.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './net.ts';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `mailfleet-${prefix}-`));
}

export interface Sink {
  port: number;
  dir: string;
  /** Dumped messages (smtp-sink -d format: X- headers, then the message as received). */
  messages(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Postfix's smtp-sink, dumping every transaction to a file in `dir`. */
export async function startSink(options: { host?: string; port?: number } = {}): Promise<Sink> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const dir = await tempDir('sink');
  const proc = spawn(
    '/usr/sbin/smtp-sink',
    ['-u', 'root', '-d', `${dir}/%H%M%S.`, `${host}:${port}`, '1000'],
    {
      stdio: 'ignore',
    },
  );
  await waitFor(() => canConnect(host, port), 60_000, 'smtp-sink to listen');
  return {
    port,
    dir,
    messages: async () => {
      const names = (await readdir(dir)).sort();
      return Promise.all(names.map((n) => readFile(join(dir, n), 'latin1')));
    },
    stop: () => stopProcess(proc, 'SIGTERM'),
  };
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((r) => {
    const socket = createConnection(port, host);
    socket.once('connect', () => {
      socket.destroy();
      r(true);
    });
    socket.once('error', () => r(false));
  });
}

/** A foreground dnsmasq on 127.0.0.1:`port` answering only from `args` (no resolv.conf, no /etc/hosts). */
export function spawnDnsmasq(port: number, args: string[]): ChildProcess {
  return spawn(
    '/usr/sbin/dnsmasq',
    [
      '--no-daemon',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--pid-file=',
      ...args,
    ],
    { stdio: 'ignore' },
  );
}

export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((r) => {
    proc.once('exit', () => r());
    proc.kill(signal);
  });
}
