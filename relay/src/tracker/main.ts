// Wiring only: `mailfleet tracker --key-file F [--port 8081] [--metrics-port 8080] [--host H]`.
// The tracking port is what the user's Ingress or Gateway exposes over HTTPS; the metrics port
// (/metrics, /healthz) stays inside the cluster.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { jsonLogger } from '../../../contract/log.ts';
import { trackingKey } from '../tracking/apply.ts';
import { listen, trackerHandler, trackerMetrics } from './server.ts';
import { EventSink } from '../events/sink.ts';
import type { Logger } from '../../../contract/log.ts';
import { DEFAULTS } from '../../../contract/defaults.ts';
import type { EventType } from '../../../contract/config.ts';
import { randomBytes } from 'node:crypto';
import { handOffEvents } from '../handoff/events.ts';
import type { HandoffTarget } from '../handoff/sender.ts';
import { PoolUniqueOpens } from './unique.ts';
import { sharedUniqueStore } from './shared-unique.ts';

const TRACKER_TYPES: readonly EventType[] = ['opened', 'clicked'];
/** How long a stopping tracker tries to send its outbox: under the pod's 30 s grace period. */
const FLUSH_MS = 20_000;
/** With relays to hand to: the receiver gets this long, then the relays get the rest for HANDOFF_MS. */
const FLUSH_BEFORE_HANDOFF_MS = 5_000;
const HANDOFF_MS = 15_000;

/** The pool's relays a stopping tracker hands its unsent events to (--handoff-*); undefined: none. */
function handoffTarget(
  v: Record<string, string | undefined>,
): { target: HandoffTarget; secret: Buffer } | undefined {
  const file = v['handoff-secret-file'];
  if (!file) return undefined;
  const secret = Buffer.from(readFileSync(file, 'utf8').trim());
  if (secret.length < 16) throw new Error('--handoff-secret-file: the secret must be at least 16 characters');
  const target: HandoffTarget = {
    port: Number(v['handoff-port']),
    peers: (v['handoff-peers'] ?? '').split(',').filter(Boolean),
    // Like the relay's handoff.dnsServers: resolvers for the Service name; none, the system's.
    dnsServers: (v['handoff-dns-servers'] ?? '').split(',').filter(Boolean),
  };
  if (v['handoff-service']) target.service = v['handoff-service'];
  return { target, secret };
}

/**
 * The signing secret, read at start (a missing or short one stops the tracker) and again for every
 * POST, so a rotated Secret (the kubelet swaps the mounted file) is used without a restart; a read
 * that fails or finds a short secret keeps the last good one.
 */
function fileSecret(file: string): () => Buffer {
  const read = () => Buffer.from(readFileSync(file, 'utf8').trim());
  let last = read();
  if (last.length < 16) throw new Error('--events-secret-file: the secret must be at least 16 characters');
  return () => {
    try {
      const current = read();
      if (current.length >= 16) last = current;
    } catch {
      // Kept: the file is replaced by a rename, so a failed read is a moment, not a removal.
    }
    return last;
  };
}

/**
 * The opened/clicked events webhook (--events-*), the same outbox and sender as the relay's
 * (docs/events.md); undefined without --events-url. The secret is read at start.
 */
async function startEvents(
  v: Record<string, string | undefined>,
  registry: Registry,
  log: Logger,
): Promise<EventSink | undefined> {
  const url = v['events-url'];
  if (!url) return undefined;
  const secretFile = v['events-secret-file'] ?? '';
  const secret = fileSecret(secretFile);
  const types = (v['events-types'] ?? TRACKER_TYPES.join(',')).split(',');
  const unknown = types.filter((t) => !TRACKER_TYPES.includes(t as EventType));
  if (unknown.length > 0 || types.length === 0)
    throw new Error(`--events-types: ${unknown.join(',')} is not one of ${TRACKER_TYPES.join(', ')}`);
  const config = {
    url,
    secretFile,
    types: types as EventType[],
    batchSize: Number(v['events-batch-size']),
    batchInterval: v['events-batch-interval'] ?? DEFAULTS.events.batchInterval,
    dir: v['events-dir'] ?? '',
    maxBytes: Number(v['events-max-bytes']),
    timeout: DEFAULTS.events.timeout,
    maxBackoff: DEFAULTS.events.maxBackoff,
  };
  if (!config.dir) throw new Error('--events-dir is required with --events-url');
  const sink = new EventSink({
    config: () => config,
    secret,
    registry,
    prefix: 'mailfleet_tracker_',
    log: (level, msg, fields) => log(level, msg, fields),
  });
  await sink.start();
  return sink;
}

const usage = `usage: mailfleet tracker --key-file <file> [--port 8081] [--metrics-port 8080] [--host 0.0.0.0]
         [--events-url <url> --events-secret-file <file> --events-dir <dir> [--events-types opened,clicked] [--events-batch-size 100]
          [--events-batch-interval 1s] [--events-max-bytes 268435456]
          [--handoff-secret-file <file> (--handoff-service <name> [--handoff-dns-servers ip[:port],...] | --handoff-peers host:port,...)
           [--handoff-port 2526]]]
         [--shared-state-url redis://host:port --shared-state-key-prefix <prefix> [--shared-state-password-file <file>]]
`;

export async function main(args: string[]): Promise<void> {
  const log = jsonLogger((line) => process.stdout.write(line));
  const { values } = parseArgs({
    args,
    options: {
      'key-file': { type: 'string' },
      port: { type: 'string', default: '8081' },
      'metrics-port': { type: 'string', default: '8080' },
      host: { type: 'string', default: '0.0.0.0' },
      'events-url': { type: 'string' },
      'events-secret-file': { type: 'string' },
      'events-dir': { type: 'string' },
      'events-types': { type: 'string' },
      'events-batch-size': { type: 'string', default: String(DEFAULTS.events.batchSize) },
      'events-batch-interval': { type: 'string', default: DEFAULTS.events.batchInterval },
      'events-max-bytes': { type: 'string', default: String(DEFAULTS.events.maxBytes) },
      'handoff-secret-file': { type: 'string' },
      'handoff-service': { type: 'string' },
      'handoff-peers': { type: 'string' },
      'handoff-dns-servers': { type: 'string' },
      'shared-state-url': { type: 'string' },
      'shared-state-key-prefix': { type: 'string', default: '' },
      'shared-state-password-file': { type: 'string' },
      'handoff-port': { type: 'string', default: String(DEFAULTS.handoff.port) },
    },
  });
  const keyFile = values['key-file'];
  if (!keyFile) {
    process.stderr.write(usage);
    process.exitCode = 2;
    return;
  }
  // The key Secret is created once and never rewritten (operator tracking.ts): read at start.
  const keys = [trackingKey(readFileSync(keyFile))];
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailfleet_tracker_' });
  const metrics = trackerMetrics(registry);
  const events = await startEvents(values, registry, log);
  const handoff = events ? handoffTarget(values) : undefined;
  // spec.sharedState: unique opens decided across the tracker pods (unique.ts).
  const passwordFile = values['shared-state-password-file'];
  const store = values['shared-state-url']
    ? sharedUniqueStore({
        url: values['shared-state-url'],
        keyPrefix: values['shared-state-key-prefix'],
        password: passwordFile ? readFileSync(passwordFile, 'utf8').trim() : undefined,
        registry,
        log,
      })
    : undefined;
  const tracker = await listen(
    trackerHandler({
      keys: () => keys,
      metrics,
      unique: new PoolUniqueOpens(store?.set),
      ...(events ? { events: (e) => void events.record([e]) } : {}),
    }),
    Number(values.port),
    values.host,
  );
  const admin = await listen(
    (req, res) => {
      if (req.url === '/metrics') {
        void registry
          .metrics()
          .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
      } else if (req.url === '/healthz') res.writeHead(200).end('ok\n');
      else res.writeHead(404).end();
    },
    Number(values['metrics-port']),
    values.host,
  );
  log('info', 'tracker started', {
    ports: { tracking: (tracker.address() as AddressInfo).port, http: (admin.address() as AddressInfo).port },
  });
  const stop = () => {
    tracker.close();
    admin.close();
    store?.close();
    // The outbox is the pod's emptyDir: what it still holds goes now, to the receiver or (with
    // --handoff-*) to a relay of the pool, which fsyncs it into its own outbox first.
    void (async () => {
      const flushed = (await events?.flush(handoff ? FLUSH_BEFORE_HANDOFF_MS : FLUSH_MS)) ?? true;
      await events?.close();
      if (!flushed && events && handoff) {
        const instance = `tracker-${randomBytes(6).toString('hex')}`;
        const summary = await handOffEvents(
          { instance, ...handoff, log, now: Date.now },
          events.outbox,
          Date.now() + HANDOFF_MS,
        );
        log(summary.left === 0 ? 'info' : 'warn', 'events handoff', { ...summary });
      }
      if (events && events.outbox.unsent > 0)
        log('warn', 'events left unsent at stop', { unsent: events.outbox.unsent });
      process.exit(0);
    })();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
