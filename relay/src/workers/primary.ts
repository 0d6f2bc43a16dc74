// The primary process of a relay with worker processes (config `workers` > 1): it forks one worker
// per spool shard, restarts a worker that dies (the new one recovers the same shard), serves the
// management port for all of them (one /metrics summed over the workers, one /readyz, one queue
// API) and, on SIGTERM or POST /drain, drains every worker before it exits. A reload that allows
// fewer workers (a limit below the count) retires the highest ones and has worker 0 adopt their
// shards; one that allows more again forks them, up to the count it started with.
import cluster, { type Worker } from 'node:cluster';
import { copyFile, stat } from 'node:fs/promises';
import type { IncomingMessage, Server } from 'node:http';
import type { SuppressionChange } from '../suppression/entry.ts';
import { AggregatorRegistry, Registry, collectDefaultMetrics } from 'prom-client';
import { probeRoutes, serveAdmin, type Reply, type Route } from '../admin/http.ts';
import { durationMs } from '../config/duration.ts';
import { loadRuntime, type RuntimeConfig } from '../config/runtime.ts';
import { referencedFiles } from '../config/load.ts';
import { FileWatcher } from '../config/watch.ts';
import { adminCounters } from '../metrics/metrics.ts';
import type { Logger } from '../../../contract/log.ts';
import {
  WORKER_ENV,
  type PrimaryMessage,
  type RouteInfo,
  type TlsSessions,
  type WorkerMessage,
  type WorkerRequest,
  type WorkerResponses,
} from './ipc.ts';
import { mergePolicy, mergeReplies } from './merge.ts';
import { drainOnSignals } from '../signals.ts';
import { resize, shardPath } from './plan.ts';
import { remember, type MissedChanges } from './missed.ts';

export interface PrimaryOptions {
  configPath: string;
  runtime: RuntimeConfig;
  defaultHostname: string;
  log: Logger;
  watchIntervalMs: number;
  count: number;
  /** Pause before a dead worker is forked again (RESTART_DELAY_MS unless set). */
  restartDelayMs?: number;
}

/** How long a worker has to answer a management request or a scrape. */
const ASK_TIMEOUT_MS = 10_000;
/** Pause before a dead worker is forked again, so a worker that cannot start does not spin. */
const RESTART_DELAY_MS = 500;
/** TLS-RPT sessions held for worker 0 while it restarts: a bound on memory (more are not counted). */
const MAX_HELD_TLS_SESSIONS = 100_000;
/** Time a draining worker gets beyond drainTimeout before it is killed (its mail is on disk). */
const DRAIN_GRACE_MS = 15_000;

interface Slot {
  worker: Worker | undefined;
  /** Set once the worker reported its listeners: it takes requests. */
  started: boolean;
  /** The worker count this slot's process was forked with (its share of the limits). */
  forkedWith: number;
  /** Suppression changes made while this worker was not running, sent when it starts. */
  missed: MissedChanges;
  /** Called when the process exits after being retired by a reload. */
  retired?: () => void;
}

export async function runPrimary(options: PrimaryOptions): Promise<void> {
  const { log, count } = options;
  /** The config in force here: the admin tokens and the drain timeout. */
  let runtime = options.runtime;
  const slots: Slot[] = Array.from({ length: count }, () => ({
    worker: undefined,
    started: false,
    forkedWith: count,
    missed: new Map(),
  }));
  /** Workers 0..running-1 run (or are being restarted); a reload may lower it, down from `count`. */
  let running = count;
  /** The workers requests and scrapes go to. */
  const live = () => slots.slice(0, running).map((_, i) => i);
  /** Requests waiting for a worker's answer, by id. */
  const pending = new Map<number, (response: unknown) => void>();
  let nextId = 1;
  let stopping = false;
  /** The first start of each worker: its listeners and its routes. */
  const firstStarts = slots.map(() =>
    Promise.withResolvers<{ ports: Record<string, number>; routes: RouteInfo[] }>(),
  );

  const ask = <K extends WorkerRequest['kind']>(
    index: number,
    request: Extract<WorkerRequest, { kind: K }>,
  ): Promise<WorkerResponses[K]> => {
    const worker = slots[index]?.worker;
    if (!worker || !slots[index]!.started) return Promise.reject(new Error(`worker ${index} is not running`));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`worker ${index} did not answer`));
      }, ASK_TIMEOUT_MS);
      pending.set(id, (response) => {
        clearTimeout(timer);
        resolve(response as WorkerResponses[K]);
      });
      worker.send({ type: 'request', id, request } satisfies PrimaryMessage);
    });
  };

  const broadcast = (message: PrimaryMessage, except?: number) => {
    slots.forEach((s, i) => {
      if (i !== except && s.started) s.worker?.send(message);
    });
  };

  // Every other worker applies a worker's suppression changes; one not running gets them when it starts.
  const shareSuppression = (changes: SuppressionChange[], from: number) => {
    slots.forEach((s, i) => {
      if (i === from) return;
      if (s.started && s.worker?.isConnected()) s.worker.send({ type: 'suppression', changes });
      else remember(s.missed, changes);
    });
  };

  /** TLS-RPT sessions of other workers that came while worker 0 was not running (bounded). */
  const tlsForWorker0: TlsSessions['sessions'] = [];
  const shareTlsSessions = (sessions: TlsSessions['sessions']) => {
    const zero = slots[0]!;
    if (zero.started && zero.worker?.isConnected())
      return void zero.worker.send({ type: 'tlsrpt', sessions } satisfies PrimaryMessage);
    tlsForWorker0.push(...sessions.slice(0, MAX_HELD_TLS_SESSIONS - tlsForWorker0.length));
  };

  const fork = (index: number) => {
    // A worker forked while a retired one still runs counts it, so it does not adopt its shard at
    // start (worker 0 is asked to once it exited); its share follows the count when it starts.
    const alive = slots.reduce((n, s, i) => (s.worker ? Math.max(n, i + 1) : n), 0);
    const slot = slots[index]!;
    slot.forkedWith = Math.max(running, alive);
    const worker = cluster.fork({ [WORKER_ENV]: `${index}/${slot.forkedWith}` });
    slot.worker = worker;
    slot.started = false;
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'response') pending.get(message.id)?.(message.response);
      else if (message.type === 'suppression') shareSuppression(message.changes, index);
      else if (message.type === 'tlsrpt') shareTlsSessions(message.sessions);
      else if (message.type === 'started') {
        slot.started = true;
        log('info', 'worker started', { worker: index, pid: worker.process.pid });
        if (slot.missed.size > 0) {
          worker.send({ type: 'suppression', changes: [...slot.missed.values()] } satisfies PrimaryMessage);
          log('info', 'worker sent the suppression changes it missed', {
            worker: index,
            changes: slot.missed.size,
          });
          slot.missed.clear();
        }
        if (index === 0 && tlsForWorker0.length > 0)
          worker.send({ type: 'tlsrpt', sessions: tlsForWorker0.splice(0) } satisfies PrimaryMessage);
        if (slot.forkedWith !== running)
          worker.send({ type: 'workers', count: running } satisfies PrimaryMessage);
        firstStarts[index]!.resolve(message);
      }
    });
  };

  cluster.setupPrimary({ serialization: 'advanced' });
  cluster.on('exit', (worker, code, signal) => {
    const index = slots.findIndex((s) => s.worker === worker);
    if (index < 0) return;
    const slot = slots[index]!;
    slot.worker = undefined;
    slot.started = false;
    if (index >= running) {
      log('info', 'worker retired', { worker: index, code, signal });
      slot.retired?.();
      return;
    }
    if (stopping) return;
    // Its spool shard is intact on disk: the next worker recovers it, as a restarted pod would.
    log('warn', 'worker exited, restarting it', { worker: index, code, signal });
    setTimeout(() => {
      if (!stopping && index < running && !slot.worker) fork(index);
    }, options.restartDelayMs ?? RESTART_DELAY_MS);
  });

  await seedSuppressionJournals(runtime, count);
  for (let index = 0; index < count; index++) fork(index);
  // Every worker listens before the relay says it started (and /readyz passes once they all do).
  const [first] = await Promise.all(firstStarts.map((s) => s.promise));
  if (!first) throw new Error('no worker');

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailfleet_relay_' });
  const counters = adminCounters(registry);

  function shutdown(): void {
    if (stopping) return;
    stopping = true;
    const deadline = durationMs(runtime.config.drainTimeout) + DRAIN_GRACE_MS;
    log('info', 'draining workers', { workers: count });
    broadcast({ type: 'drain' });
    // A worker not started yet has no queue to hand off beyond its shard on disk: it stops.
    for (const s of slots) if (s.worker && !s.started) s.worker.kill('SIGTERM');
    const killer = setTimeout(() => {
      for (const s of slots) s.worker?.process.kill('SIGKILL');
    }, deadline);
    killer.unref();
    const exited = () => slots.every((s) => s.worker === undefined);
    const done = () => {
      if (!exited()) return;
      server.close();
      server.closeAllConnections();
      process.exit(0);
    };
    cluster.on('exit', done);
    done();
  }

  const forwarded = (info: RouteInfo): Route => {
    const policy = mergePolicy(info);
    return {
      method: info.method,
      pattern: new RegExp(info.pattern),
      access: info.access,
      ...(info.action ? { action: info.action } : {}),
      handler: async (_params, url, req) => {
        if (policy === 'drain') {
          shutdown();
          return { status: 202, body: { draining: true } };
        }
        const request = { kind: 'admin' as const, method: info.method, url: url.pathname + url.search };
        const body = await readBody(req);
        const targets = policy === 'worker-0' ? [0] : live();
        const replies = await Promise.all(
          targets.map((i) =>
            ask(i, { ...request, body }).catch((err: unknown): Reply => ({
              status: 503,
              body: { error: String(err) },
            })),
          ),
        );
        return mergeReplies(policy, replies, url);
      },
    };
  };

  const routes: Route[] = [
    ...probeRoutes({
      registry: async () => {
        const all = await Promise.all(live().map((i) => ask(i, { kind: 'metrics' }).catch(() => undefined)));
        return AggregatorRegistry.aggregate([
          await registry.getMetricsAsJSON(),
          ...all.filter((m) => m !== undefined),
        ]);
      },
      notReadyReasons: async () => {
        const answers = await Promise.all(
          live().map((i) => ask(i, { kind: 'ready' }).catch(() => [`worker ${i} not running`])),
        );
        return [...new Set([...(stopping ? ['draining'] : []), ...answers.flat()])];
      },
    }),
    ...first.routes.map(forwarded),
  ];

  const server: Server = serveAdmin(routes, {
    now: Date.now,
    tokens: () => runtime.adminTokens,
    authThrottle: () => ({
      burst: runtime.config.http.authThrottle.burst,
      refillMs: durationMs(runtime.config.http.authThrottle.refill),
    }),
    refused: (reason) => counters.httpRefusals.inc({ reason }),
    audit: (entry) => {
      counters.adminActions.inc({ action: entry.action, role: entry.role });
      log('info', 'admin action', { ...entry });
    },
  });
  const http = runtime.config.http;
  await new Promise<void>((resolve) => server.listen(http.port, http.host, resolve));
  const address = server.address();
  const ports = { ...first.ports, http: typeof address === 'object' && address ? address.port : http.port };

  // Tokens and the drain timeout follow the config file here; the workers reload their own parts.
  const watcher = new FileWatcher(() => void reload(), options.watchIntervalMs);
  const reload = async () => {
    const loaded = await loadRuntime(options.configPath, { defaultHostname: options.defaultHostname });
    if (!loaded.ok) return;
    runtime = loaded.runtime;
    resizing = resizing
      .then(() => resizeTo(runtime))
      .catch((err: unknown) => log('error', 'changing the worker count failed', { err: String(err) }));
    await watcher.watch([options.configPath, ...referencedFiles(runtime.config)]);
  };
  /** The resize in progress: reloads apply one after the other. */
  let resizing = Promise.resolve();
  const resizeTo = async (next: RuntimeConfig) => {
    const plan = resize(running, count, next.config);
    if (plan.count === running || stopping) return;
    log('info', 'the reloaded config changes the worker count', { from: running, to: plan.count });
    running = plan.count;
    // Raised: the running workers take their smaller shares before the new ones start.
    if (plan.fork.length > 0) {
      broadcast({ type: 'workers', count: running });
      for (const index of plan.fork) if (!slots[index]!.worker) fork(index);
      return;
    }
    // Lowered: the retired workers stop (their queues stay in their shards), then worker 0 takes
    // their shards and the others take their larger shares. Until they exited, the retiring
    // workers' own reload gave them none of a limit that no longer covers them.
    await Promise.all(plan.retire.map((index) => retire(index, next)));
    // The larger shares first: they do not wait for an adoption of a big shard (which may outlast
    // the request's timeout and goes on in worker 0 all the same; a worker 0 that is down adopts
    // the shards when it starts, forked with the lower count).
    broadcast({ type: 'workers', count: running });
    const adopted = await ask(0, { kind: 'adopt', from: running });
    log('info', 'retired workers adopted', { workers: running, messages: adopted });
  };
  const retire = (index: number, next: RuntimeConfig) => {
    const slot = slots[index]!;
    const worker = slot.worker;
    if (!worker) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    slot.retired = resolve;
    worker.send({ type: 'retire' } satisfies PrimaryMessage);
    // It finishes its deliveries in flight; one stuck past the drain timeout is killed (its mail
    // is fsynced in its shard, adopted all the same).
    const killer = setTimeout(
      () => worker.process.kill('SIGKILL'),
      durationMs(next.config.drainTimeout) + DRAIN_GRACE_MS,
    );
    return promise.finally(() => clearTimeout(killer));
  };
  await watcher.watch([options.configPath, ...referencedFiles(runtime.config)]);

  drainOnSignals(log, shutdown);
  log('info', 'relay started', { ports, workers: count });
}

/** A request body read whole (the suppression import); IPC carries it to the worker in one message. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A worker's suppression journal starts as a copy of worker 0's when it has none (a relay that had
 * fewer workers before), so no worker forgets what the list held.
 */
async function seedSuppressionJournals(runtime: RuntimeConfig, count: number): Promise<void> {
  const file = runtime.config.suppression.file;
  if (!(await exists(file))) return;
  for (let index = 1; index < count; index++) {
    const shard = shardPath(file, index);
    if (!(await exists(shard))) await copyFile(file, shard);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
