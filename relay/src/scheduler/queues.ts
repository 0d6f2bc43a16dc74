// Ready queues: one FIFO per destination and shaping class. Jobs under the same limits to the same
// destination wait in arrival order; a queue that a limit holds back waits on its own, so it never
// blocks another. Waiting queues are kept in waiter sets (woken when a connection frees) or in a
// heap by time (woken when the token bucket has credit).
import type { Job } from './model.ts';
import type { ShapingClass } from '../shaping/plan.ts';

/** Why a ready job is not being sent, as the queue API shows it. */
export type WaitReason =
  | { reason: 'rate limit'; limit: string; until: number; backoff: boolean }
  | { reason: 'connection limit'; limit: string }
  | { reason: 'destination connections' }
  | { reason: 'domain suspended' }
  | { reason: 'resolving MX' };

export interface ReadyQueue {
  key: string;
  destination: string;
  shaping: ShapingClass;
  jobs: Job[];
  /** Index of the first live entry in `jobs` (cheap FIFO without shift()). */
  head: number;
  /** Set while a limit or a cap holds the queue back; undefined while it is served. */
  waiting: WaitReason | undefined;
  /** Id of the counter the queue waits on (a limit destination, or "dest:<destination>"). */
  waitingOn: string | undefined;
  /** Set when the queue was replaced by a rebuild: its heap and waiter entries are stale. */
  dead: boolean;
  /** The shared store is deciding on its pool-wide limits now (one question at a time). */
  deciding: boolean;
  /** The shared store admitted the head job under the pool-wide limits; used when it starts. */
  poolTicket: boolean;
}

export function queueKey(destination: string, shaping: ShapingClass): string {
  return `${destination}\u0001${shaping.key}`;
}

export function newQueue(destination: string, shaping: ShapingClass): ReadyQueue {
  return {
    key: queueKey(destination, shaping),
    destination,
    shaping,
    jobs: [],
    head: 0,
    waiting: undefined,
    waitingOn: undefined,
    dead: false,
    deciding: false,
    poolTicket: false,
  };
}

/** The first job still ready, dropping deleted or already-taken entries; undefined when empty. */
export function peekReady(q: ReadyQueue): Job | undefined {
  while (q.head < q.jobs.length) {
    const job = q.jobs[q.head]!;
    if (job.state === 'ready' && !job.message.deleted && job.queueKey === q.key) return job;
    q.head++;
  }
  compact(q);
  return undefined;
}

export function takeHead(q: ReadyQueue): void {
  q.head++;
  compact(q);
}

function compact(q: ReadyQueue): void {
  if (q.head === q.jobs.length) {
    q.jobs.length = 0;
    q.head = 0;
  } else if (q.head > 1024 && q.head * 2 > q.jobs.length) {
    q.jobs.splice(0, q.head);
    q.head = 0;
  }
}

/** Ready jobs still in the queue, in order. */
export function liveJobs(q: ReadyQueue): Job[] {
  return q.jobs
    .slice(q.head)
    .filter((j) => j.state === 'ready' && !j.message.deleted && j.queueKey === q.key);
}
