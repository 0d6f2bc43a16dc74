// What the primary process and its workers tell each other over the cluster IPC channel
// (serialization 'advanced': Buffers pass as they are). Requests carry an id; their answer comes
// back as a response with the same id.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Access } from '../admin/auth.ts';
import type { AdminAction, Reply } from '../admin/http.ts';
import type { SuppressionChange } from '../suppression/entry.ts';
import type { TlsAttempt } from '../tlsrpt/tally.ts';

/** TLS-RPT sessions a worker counted (at: ms), for worker 0 to count: one reporter per relay. */
export interface TlsSessions {
  type: 'tlsrpt';
  sessions: { attempt: TlsAttempt; at: number }[];
}

/** A management route as the primary forwards it: the worker's route without its handler. */
export interface RouteInfo {
  method: string;
  /** The route's RegExp source. */
  pattern: string;
  access: Access;
  action?: AdminAction;
}

export type WorkerRequest =
  | { kind: 'admin'; method: string; url: string; body: Buffer }
  | { kind: 'ready' }
  | { kind: 'metrics' }
  /** Take the spool shards `from` and above, left by retired workers (worker 0). */
  | { kind: 'adopt'; from: number };

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/** What each request kind answers. */
export interface WorkerResponses {
  admin: Reply;
  ready: string[];
  metrics: WorkerMetrics;
  /** Messages adopted. */
  adopt: number;
}

export type PrimaryMessage =
  | { type: 'request'; id: number; request: WorkerRequest }
  /** Drain (handoff included), close, exit: the pod is going. */
  | { type: 'drain' }
  /** Suppression changes another worker made, to apply without publishing them again. */
  | { type: 'suppression'; changes: SuppressionChange[] }
  /** A reload changed the worker count: take the share of the limits that goes with it. */
  | { type: 'workers'; count: number }
  /** A reload allows fewer workers: stop taking mail, finish deliveries in flight, close, exit. */
  | { type: 'retire' }
  /** To worker 0: the other workers' TLS-RPT sessions. */
  | TlsSessions;

export type WorkerMessage =
  | { type: 'response'; id: number; response: unknown }
  | { type: 'started'; ports: Record<string, number>; routes: RouteInfo[] }
  | { type: 'suppression'; changes: SuppressionChange[] }
  /** From a worker other than 0: its TLS-RPT sessions. */
  | TlsSessions;

/** The worker slot the primary gave a worker process, from its environment (`index/count`). */
export const WORKER_ENV = 'MAILFLEET_WORKER';

export function parseWorkerEnv(value: string | undefined): { index: number; count: number } | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(value ?? '');
  if (!m) return undefined;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return index < count ? { index, count } : undefined;
}
