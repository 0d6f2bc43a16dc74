// The management port: /metrics, /healthz, /readyz and the JSON queue API. Routing is a typed
// table; handlers read from the relay through the AdminDeps interface and never touch the spool.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Job, QueuedMessage } from '../scheduler/model.ts';

export interface AdminDeps {
  registry: Registry;
  /** Reasons the relay is not ready ([] when ready). */
  notReadyReasons: () => string[];
  messages: () => Iterable<QueuedMessage>;
  message: (id: string) => QueuedMessage | undefined;
  retryNow: (id: string) => boolean;
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
    ['GET', /^\/api\/queue$/, () => ({ status: 200, body: queueSummary(deps.messages(), deps.now()) })],
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
          if (state && !jobs.some((j) => j.state === state)) continue;
          if (destination && !jobs.some((j) => j.destination === destination)) continue;
          if (sendingDomain && m.senderDomain !== sendingDomain) continue;
          out.push(messageSummary(m, deps.now()));
        }
        return { status: 200, body: { messages: out } };
      },
    ],
    [
      'GET',
      /^\/api\/messages\/([A-Za-z0-9]+)$/,
      ([id]) => {
        const m = deps.message(id ?? '');
        return m ? { status: 200, body: messageDetail(m, deps.now()) } : notFound(id);
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
  deferred: number;
  inflight: number;
}

/** Pure: counts of delivery jobs by destination and by sending domain. */
export function queueSummary(messages: Iterable<QueuedMessage>, now: number) {
  const byDestination: Record<string, Counts> = {};
  const bySendingDomain: Record<string, Counts> = {};
  const total: Counts = { ready: 0, deferred: 0, inflight: 0 };
  let count = 0;
  let oldest: number | undefined;
  for (const m of messages) {
    count++;
    oldest = Math.min(oldest ?? Infinity, m.envelope.receivedAt);
    for (const job of m.jobs.values()) {
      bump((byDestination[job.destination] ??= { ready: 0, deferred: 0, inflight: 0 }), job);
      bump((bySendingDomain[m.senderDomain || '<>'] ??= { ready: 0, deferred: 0, inflight: 0 }), job);
      bump(total, job);
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

function bump(counts: Counts, job: Job): void {
  counts[job.state]++;
}

function messageSummary(m: QueuedMessage, now: number) {
  return {
    id: m.envelope.id,
    from: m.envelope.from,
    recipients: m.envelope.recipients.length,
    size: m.envelope.bodyLength,
    receivedAt: new Date(m.envelope.receivedAt).toISOString(),
    ageSeconds: Math.round((now - m.envelope.receivedAt) / 1000),
    jobs: [...m.jobs.values()].map((j) => ({
      destination: j.destination,
      state: j.state,
      attempts: j.attempts,
      nextAttemptAt: j.state === 'deferred' ? new Date(j.nextAttemptAt).toISOString() : null,
      lastReply: j.lastReply ?? null,
    })),
  };
}

function messageDetail(m: QueuedMessage, now: number) {
  return {
    ...messageSummary(m, now),
    client: m.envelope.client,
    recipients: m.recipients.map((r) => ({
      address: r.address,
      status: r.status ?? 'pending',
      attempts: r.attempts,
      reply: r.reply ?? null,
    })),
  };
}
