// Wiring only: parse arguments, load the config, build the relay, run it until SIGTERM/SIGINT.
import { hostname } from 'node:os';
import { loadRuntime } from './config/runtime.ts';
import { hashPassword } from '../../contract/users.ts';
import { jsonLogger } from '../../contract/log.ts';
import { drainOnSignals } from './signals.ts';
import cluster from 'node:cluster';
import { parseWorkerEnv, WORKER_ENV } from './workers/ipc.ts';
import { workerCount } from './workers/plan.ts';
// The relay itself is imported where it runs: the primary of worker processes never loads it
// (about 75 MiB less in a pod with workers, bench/relay-throughput/workers-memory.ts).

const usage = `usage: mailfleet relay --config <file>
       mailfleet relay --check-config <file>     validate and exit
       mailfleet relay --config <file> --evacuate
                                  hand the whole spool to the pool's relays (handoff), no listener;
                                  exit 0 once it is empty
       mailfleet relay --hash-password           read a password on stdin, print a users-file hash
`;

export async function main(args: string[]): Promise<void> {
  // Spool fsyncs run on libuv's thread pool (4 threads by default); under load they would queue
  // every other file operation behind them. Must be set before the pool's first use.
  process.env.UV_THREADPOOL_SIZE ??= '16';
  const log = jsonLogger((line) => process.stdout.write(line));
  if (args.includes('--hash-password')) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    process.stdout.write(
      `${await hashPassword(
        Buffer.concat(chunks)
          .toString('utf8')
          .replace(/\r?\n$/, ''),
      )}\n`,
    );
    return;
  }
  const flag = args.includes('--check-config') ? '--check-config' : '--config';
  const configPath = args[args.indexOf(flag) + 1];
  if (!args.includes(flag) || !configPath) {
    process.stderr.write(usage);
    process.exitCode = 2;
    return;
  }
  const defaultHostname = hostname();
  const loaded = await loadRuntime(configPath, { defaultHostname });
  if (!loaded.ok) {
    for (const e of loaded.errors) process.stderr.write(`${configPath}: ${e.path}: ${e.message}\n`);
    process.exitCode = 2;
    return;
  }
  if (flag === '--check-config') {
    process.stdout.write(`${configPath}: ok\n`);
    return;
  }
  if (args.includes('--evacuate')) {
    const { runEvacuation } = await import('./handoff/evacuate.ts');
    process.exitCode = await runEvacuation(loaded.runtime, log);
    return;
  }
  // MAILFLEET_WATCH_INTERVAL_MS: how often the config files are polled (tests use 200 ms).
  const watchIntervalMs = Number(process.env.MAILFLEET_WATCH_INTERVAL_MS) || 1000;
  const common = { configPath, runtime: loaded.runtime, defaultHostname, log, watchIntervalMs };
  // Several processes (relay/src/workers/): the primary forks the workers, each a relay on a shard.
  const slot = cluster.isWorker ? parseWorkerEnv(process.env[WORKER_ENV]) : undefined;
  if (slot) return (await import('./workers/worker.ts')).runWorker({ ...common, slot });
  const workers = workerCount(loaded.runtime.config);
  if (workers.cappedBy)
    log('warn', 'fewer workers than configured: a limit is smaller than the worker count', {
      workers: workers.count,
      limit: workers.cappedBy,
    });
  // MAILFLEET_WORKER_RESTART_DELAY_MS: the pause before a dead worker is forked again (500 ms; a
  // test that acts while a worker is down sets a longer one).
  const restartDelayMs = Number(process.env.MAILFLEET_WORKER_RESTART_DELAY_MS) || undefined;
  if (workers.count > 1)
    return (await import('./workers/primary.ts')).runPrimary({
      ...common,
      count: workers.count,
      ...(restartDelayMs ? { restartDelayMs } : {}),
    });
  const { Relay } = await import('./relay.ts');
  // Shutdown is main's: SIGTERM, SIGINT and POST /drain all drain once, close, and exit so the pod
  // can go.
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    void relay
      .drain()
      .then(() => relay.close())
      .then(() => process.exit(0));
  };
  const relay = new Relay({
    configPath,
    runtime: loaded.runtime,
    defaultHostname,
    log,
    watchIntervalMs,
    onDrainRequest: shutdown,
  });
  await relay.start();
  drainOnSignals(log, shutdown);
}
