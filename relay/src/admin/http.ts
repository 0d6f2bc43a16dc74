// The management port: /metrics, /healthz, /readyz and the JSON queue API. Routing is a typed
// table; handlers read from the relay through the AdminDeps interface and never touch the spool.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Job, QueuedMessage } from '../scheduler/model.ts';
import type { WaitReason } from '../scheduler/queues.ts';
import type { LimitDestinationState } from '../shaping/shaper.ts';

export interface AdminDeps {
  registry: Registry;
  /** Reasons the relay is not ready ([] when ready). */
  notReadyReasons: () => string[];
  messages: () => Iterable<QueuedMessage>;
  message: (id: string) => QueuedMessage | undefined;
  retryNow: (id: string) => boolean;
  /** Why a ready job is held back (a limit, a cap, a suspended domain); undefined if it is not. */
  whyWaiting: (job: Job) => WaitReason | undefined;
  /** Limit destinations: admitted rate, connections, backoff. */
  limitDestinations: () => LimitDestinationState[];
  delete: (id: string) => Promise<boolean>;
  drain: () => void;
  now: () => number;
}

type Reply = { status: number; body: unknown; contentType?: string };
type Handler = (params: string[], url: URL) => Promise<Reply> | Reply;

export function createAdminServer(deps: AdminDeps): Server {
  const routes: [string, RegExp, Handler][] = [
    [
      'GET',
      /^\/metrics$/,
      async () => ({
        status: 200,
        body: await deps.registry.metrics(),
        contentType: deps.registry.contentType,
      }),
    ],
    ['GET', /^\/healthz$/, () => ({ status: 200, body: { status: 'ok' } })],
    [
      'GET',
      /^\/readyz$/,
      () => {
        const reasons = deps.notReadyReasons();
        return { status: reasons.length === 0 ? 200 : 503, body: { ready: reasons.length === 0, reasons } };
      },
    ],
    [
      'GET',
      /^\/api\/queue$/,
      () => ({ status: 200, body: queueSummary(deps.messages(), deps.now(), deps.whyWaiting) }),
    ],
    ['GET', /^\/api\/shaping$/, () => ({ status: 200, body: { destinations: deps.limitDestinations() } })],
    [
      'GET',
      /^\/api\/messages$/,
      (_p, url) => {
        const state = url.searchParams.get('state');
        const destination = url.searchParams.get('destination');
        const sendingDomain = url.searchParams.get('sendingDomain');
        const limit = Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 10000);
        const out: unknown[] = [];
        for (const m of deps.messages()) {
          if (out.length >= limit) break;
          const jobs = [...m.jobs.values()];
          if (state && !jobs.some((j) => shownState(j, deps.whyWaiting) === state)) continue;
          if (destination && !jobs.some((j) => j.destination === destination)) continue;
          if (sendingDomain && m.senderDomain !== sendingDomain) continue;
          out.push(messageSummary(m, deps.now(), deps.whyWaiting));
        }
        return { status: 200, body: { messages: out } };
      },
    ],
    [
      'GET',
      /^\/api\/messages\/([A-Za-z0-9]+)$/,
      ([id]) => {
        const m = deps.message(id ?? '');
        return m ? { status: 200, body: messageDetail(m, deps.now(), deps.whyWaiting) } : notFound(id);
      },
    ],
    [
      'POST',
      /^\/api\/messages\/([A-Za-z0-9]+)\/retry$/,
      ([id]) => (deps.retryNow(id ?? '') ? { status: 202, body: { id, retry: 'scheduled' } } : notFound(id)),
    ],
    [
      'DELETE',
      /^\/api\/messages\/([A-Za-z0-9]+)$/,
      async ([id]) =>
        (await deps.delete(id ?? '')) ? { status: 200, body: { id, deleted: true } } : notFound(id),
    ],
    [
      'POST',
      /^\/drain$/,
      () => {
        deps.drain();
        return { status: 202, body: { draining: true } };
      },
    ],
  ];

  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let pathMatched = false;
    for (const [method, pattern, handler] of routes) {
      const match = pattern.exec(url.pathname);
      if (!match) continue;
      pathMatched = true;
      if (method !== req.method) continue;
      Promise.resolve(handler(match.slice(1), url)).then(
        (reply) => send(res, reply),
        (err: unknown) => send(res, { status: 500, body: { error: String(err) } }),
      );
      return;
    }
    send(res, pathMatched ? { status: 405, body: { error: 'method not allowed' } } : notFound(url.pathname));
  });
}

function send(res: ServerResponse, reply: Reply): void {
  const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body, null, 2);
  res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/json' });
  res.end(text);
}

function notFound(what: string | undefined): Reply {
  return { status: 404, body: { error: `not found: ${what ?? ''}` } };
}

interface Counts {
  ready: number;
  waiting: number;
  deferred: number;
  inflight: number;
}

type WhyWaiting = (job: Job) => WaitReason | undefined;

const zero = (): Counts => ({ ready: 0, waiting: 0, deferred: 0, inflight: 0 });

/** A ready job that a limit, a cap or a suspension holds back is shown as "waiting". */
function shownState(job: Job, why: WhyWaiting): keyof Counts {
  return job.state === 'ready' && why(job) ? 'waiting' : job.state;
}

/** Pure: counts of delivery jobs by destination and by sending domain. */
export function queueSummary(
  messages: Iterable<QueuedMessage>,
  now: number,
  why: WhyWaiting = () => undefined,
) {
  const byDestination: Record<string, Counts> = {};
  const bySendingDomain: Record<string, Counts> = {};
  const total: Counts = zero();
  let count = 0;
  let oldest: number | undefined;
  for (const m of messages) {
    count++;
    oldest = Math.min(oldest ?? Infinity, m.envelope.receivedAt);
    for (const job of m.jobs.values()) {
      const state = shownState(job, why);
      (byDestination[job.destination] ??= zero())[state]++;
      (bySendingDomain[m.senderDomain || '<>'] ??= zero())[state]++;
      total[state]++;
    }
  }
  return {
    messages: count,
    jobs: total,
    oldestAgeSeconds: oldest === undefined ? 0 : Math.round((now - oldest) / 1000),
    byDestination,
    bySendingDomain,
  };
}

function waitingFor(job: Job, why: WhyWaiting) {
  const w = job.state === 'ready' ? why(job) : undefined;
  if (!w) return null;
  return {
    reason: w.reason,
    limit: 'limit' in w ? w.limit : null,
    until: 'until' in w ? new Date(w.until).toISOString() : null,
    backoff: 'backoff' in w ? w.backoff : false,
  };
}

function messageSummary(m: QueuedMessage, now: number, why: WhyWaiting) {
  return {
    id: m.envelope.id,
    from: m.envelope.from,
    recipients: m.envelope.recipients.length,
    size: m.envelope.bodyLength,
    receivedAt: new Date(m.envelope.receivedAt).toISOString(),
    ageSeconds: Math.round((now - m.envelope.receivedAt) / 1000),
    jobs: [...m.jobs.values()].map((j) => ({
      destination: j.destination,
      state: shownState(j, why),
      waitingFor: waitingFor(j, why),
      attempts: j.attempts,
      nextAttemptAt: j.state === 'deferred' ? new Date(j.nextAttemptAt).toISOString() : null,
      lastReply: j.lastReply ?? null,
    })),
  };
}

function messageDetail(m: QueuedMessage, now: number, why: WhyWaiting) {
  return {
    ...messageSummary(m, now, why),
    client: m.envelope.client,
    recipients: m.recipients.map((r) => ({
      address: r.address,
      status: r.status ?? 'pending',
      attempts: r.attempts,
      reply: r.reply ?? null,
    })),
  };
}
