// A real redis-server (Debian's package) for the tests: loopback, a random free port, a password,
// append-only persistence in its own directory so a restart on the same port keeps the data.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  freePort,
  relayConfig,
  startRelay,
  stopProcess,
  tempDir,
  waitFor,
  type RelayProcess,
} from './relay/peers.ts';

export interface RedisServer {
  port: number;
  url: string;
  password: string;
  /** A file holding the password, as a relay's sharedState.passwordFile reads it. */
  passwordFile: string;
  dir: string;
  /** Stops the server (SIGTERM: it writes its append-only file and exits). */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered until resume(). */
  pause(): void;
  resume(): void;
}

export async function startRedis(dir: string, password = 'test-password-0123456789'): Promise<RedisServer> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password];
    args.push(
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    );
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = child;
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    await waitFor(
      () => output.includes('Ready to accept connections') || child.exitCode !== null,
      60_000,
      'redis-server',
    );
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
  };
  await start();
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    password,
    passwordFile,
    dir,
    stop: async () => {
      if (proc && proc.exitCode === null) await stopProcess(proc, 'SIGTERM');
    },
    restart: start,
    pause: () => void proc?.kill('SIGSTOP'),
    resume: () => void proc?.kill('SIGCONT'),
  };
}

/** Waits until the relay's metrics say its shared store is up (or down). */
export async function waitStore(relay: RelayProcess, up: boolean, timeoutMs = 15000): Promise<void> {
  await waitFor(
    async () => (await relay.metric('mailfleet_relay_shared_state_up')) === (up ? 1 : 0),
    timeoutMs,
    up ? 'store up' : 'store down',
  );
}

/**
 * `count` relays of one pool sharing `redis` (the key prefix the operator renders for pool
 * test/outbound), delivering to the smarthost on `upstreamPort`, each with `config` on top of the
 * test config; their spool directories are added to `dirs` for removal. Resolves once every relay
 * reaches the store.
 */
export async function startRelaysOnStore(o: {
  redis: RedisServer;
  upstreamPort: number;
  count: number;
  dirs: string[];
  config?: Record<string, unknown>;
}): Promise<RelayProcess[]> {
  const relays: RelayProcess[] = [];
  for (let i = 0; i < o.count; i++) {
    const spool = await tempDir(`spool${i}`);
    o.dirs.push(spool);
    const sharedState = {
      url: o.redis.url,
      passwordFile: o.redis.passwordFile,
      keyPrefix: 'mailfleet:test/outbound:',
    };
    relays.push(await startRelay(relayConfig(spool, o.upstreamPort, { sharedState, ...o.config })));
  }
  for (const relay of relays) await waitStore(relay, true);
  return relays;
}

/**
 * A redis-server in a new directory (pushed to `dirs` for the file's cleanup) and a client of the
 * test's own that reads the store directly (leases, counters) and never throws on a stopped store.
 */
export async function startRedisWithClient(dirs: string[]): Promise<{ redis: RedisServer; store: Redis }> {
  const dir = await tempDir('redis');
  dirs.push(dir);
  const redis = await startRedis(dir);
  const store = new Redis(redis.url, { password: redis.password, maxRetriesPerRequest: 0 });
  store.on('error', () => undefined);
  return { redis, store };
}
