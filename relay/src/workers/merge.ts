// Pure: how the primary answers a management request from its workers' answers, so that the
// operator and the CLI see one relay. Each route gets a policy from a table; a route not in it
// (the suppression list's) goes to worker 0, whose changes reach the other workers (worker.ts).
import type { Reply } from '../admin/http.ts';
import type { RouteInfo } from './ipc.ts';

export type MergePolicy =
  /** Every worker's queue counts, added up. */
  | 'sum-queue'
  /** Every worker's list under `key`, one after the other (up to `?limit=`). */
  | { concat: string }
  /** A message lives in one shard: the first answer that is not 404. */
  | 'first-found'
  /** The primary itself: it drains every worker. */
  | 'drain'
  | 'worker-0';

const POLICIES: [RegExp, MergePolicy][] = [
  [/^\/api\/queue$/, 'sum-queue'],
  [/^\/api\/messages$/, { concat: 'messages' }],
  [/^\/api\/shaping$/, { concat: 'destinations' }],
  [/^\/api\/messages\/([A-Za-z0-9]+)$/, 'first-found'],
  [/^\/api\/messages\/([A-Za-z0-9]+)\/retry$/, 'first-found'],
];

export function mergePolicy(route: RouteInfo): MergePolicy {
  if (route.action === 'drain') return 'drain';
  return POLICIES.find(([pattern]) => pattern.source === route.pattern)?.[1] ?? 'worker-0';
}

interface Counts {
  ready: number;
  waiting: number;
  deferred: number;
  inflight: number;
}
interface QueueSummary {
  messages: number;
  jobs: Counts;
  oldestAgeSeconds: number;
  byDestination: Record<string, Counts>;
  bySendingDomain: Record<string, Counts>;
}

function addCounts(into: Counts | undefined, more: Counts): Counts {
  return {
    ready: (into?.ready ?? 0) + more.ready,
    waiting: (into?.waiting ?? 0) + more.waiting,
    deferred: (into?.deferred ?? 0) + more.deferred,
    inflight: (into?.inflight ?? 0) + more.inflight,
  };
}

function addByKey(into: Record<string, Counts>, more: Record<string, Counts>): Record<string, Counts> {
  const out = { ...into };
  for (const [key, counts] of Object.entries(more)) out[key] = addCounts(out[key], counts);
  return out;
}

export function sumQueues(summaries: readonly QueueSummary[]): QueueSummary {
  return summaries.reduce<QueueSummary>(
    (a, s) => ({
      messages: a.messages + s.messages,
      jobs: addCounts(a.jobs, s.jobs),
      oldestAgeSeconds: Math.max(a.oldestAgeSeconds, s.oldestAgeSeconds),
      byDestination: addByKey(a.byDestination, s.byDestination),
      bySendingDomain: addByKey(a.bySendingDomain, s.bySendingDomain),
    }),
    {
      messages: 0,
      jobs: { ready: 0, waiting: 0, deferred: 0, inflight: 0 },
      oldestAgeSeconds: 0,
      byDestination: {},
      bySendingDomain: {},
    },
  );
}

/** One reply from the workers' replies (in worker order) to a request under `policy`. */
export function mergeReplies(policy: MergePolicy, replies: readonly Reply[], url: URL): Reply {
  const failed = replies.find((r) => r.status >= 500);
  if (failed) return failed;
  if (policy === 'sum-queue')
    return { status: 200, body: sumQueues(replies.map((r) => r.body as QueueSummary)) };
  if (policy === 'first-found')
    return replies.find((r) => r.status !== 404) ?? replies[0] ?? { status: 404, body: {} };
  if (typeof policy === 'object' && replies.every((r) => r.status === 200)) {
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 10000);
    const items = replies.flatMap((r) => (r.body as Record<string, unknown[]>)[policy.concat] ?? []);
    return {
      status: 200,
      body: { [policy.concat]: policy.concat === 'messages' ? items.slice(0, limit) : items },
    };
  }
  return replies[0] ?? { status: 503, body: { error: 'no worker answered' } };
}
