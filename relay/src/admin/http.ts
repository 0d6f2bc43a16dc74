// The management port: /metrics, /healthz, /readyz and the JSON queue API. Routing is a typed
// table in which each route names the access it needs (auth.ts decides); handlers read from the
// relay through the AdminDeps interface and never touch the spool.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Job, QueuedMessage } from '../scheduler/model.ts';
import type { WaitReason } from '../scheduler/queues.ts';
import type { LimitDestinationState } from '../shaping/shaper.ts';
import {
  afterFailedAttempt,
  decideAccess,
  isFull,
  presentedAuthorization,
  throttledFor,
  type Access,
  type AdminToken,
  type BucketPolicy,
  type FailureBucket,
} from './auth.ts';

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
  /** The tokens in force (swapped by a reload, so a rotated token file applies without restart). */
  tokens: () => readonly AdminToken[];
  /** Failed-attempt bucket per client address. */
  authThrottle: () => BucketPolicy;
  /** A refused request (401, 403 or 429), for the metric. */
  refused: (reason: RefusalReason) => void;
  /** A state-changing request that was authorised, after it ran: logged and counted. */
  audit: (entry: AuditEntry) => void;
  /** Routes of other modules (the suppression list's, TLS-RPT's), appended to the table. */
  routes?: readonly Route[];
}

export type RefusalReason = 'missing' | 'invalid' | 'forbidden' | 'throttled';
export type AdminAction =
  | 'retry'
  | 'delete'
  | 'drain'
  | 'suppression-add'
  | 'suppression-remove'
  | 'suppression-import'
  | 'tlsrpt-send';

export interface AuditEntry {
  action: AdminAction;
  tokenName: string;
  role: string;
  /** The message acted on; undefined for drain. */
  queueId: string | undefined;
  client: string;
  /** HTTP status of the reply: 2xx done, 404 no such message. */
  status: number;
  /** What else the handler says the change was about (an address, a count). */
  detail?: Record<string, string | number>;
}

export type Reply = {
  status: number;
  /** JSON-encoded unless a string; an async iterable of strings is streamed as it comes. */
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** Added to the audit entry of a state-changing route. */
  audit?: Record<string, string | number>;
};
type Handler = (params: string[], url: URL, req: IncomingMessage) => Promise<Reply> | Reply;
export interface Route {
  method: string;
  pattern: RegExp;
  access: Access;
  /** Set on routes that change state: the request is audited. */
  action?: AdminAction;
  handler: Handler;
}

/** Paths that need a token whatever follows, so an unknown /api path does not answer 404 to strangers. */
const PROTECTED = /^\/(api|drain)(\/|$)/;
/** Failure buckets kept before full ones are forgotten (bounds memory under a spray of addresses). */
const MAX_BUCKETS = 10_000;
const REALM = 'Bearer realm="mailfleet-relay"';

/** The access checks and the audit of the management port, whatever serves its routes. */
export type AdminAccess = Pick<AdminDeps, 'now' | 'tokens' | 'authThrottle' | 'refused' | 'audit'>;

/** The open routes of the management port: metrics and the probes. */
export function probeRoutes(probes: {
  registry: () => Promise<Registry>;
  notReadyReasons: () => string[] | Promise<string[]>;
}): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^\/metrics$/,
      access: 'public',
      handler: async () => {
        const registry = await probes.registry();
        return { status: 200, body: await registry.metrics(), contentType: registry.contentType };
      },
    },
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      access: 'public',
      handler: () => ({ status: 200, body: { status: 'ok' } }),
    },
    {
      method: 'GET',
      pattern: /^\/readyz$/,
      access: 'public',
      handler: async () => {
        const reasons = await probes.notReadyReasons();
        return { status: reasons.length === 0 ? 200 : 503, body: { ready: reasons.length === 0, reasons } };
      },
    },
  ];
}

/** The management routes of one relay process, read from its scheduler and suppression list. */
export function relayRoutes(deps: AdminDeps): Route[] {
  return [
    ...probeRoutes({
      registry: () => Promise.resolve(deps.registry),
      notReadyReasons: deps.notReadyReasons,
    }),
    {
      method: 'GET',
      pattern: /^\/api\/queue$/,
      access: 'read',
      handler: () => ({ status: 200, body: queueSummary(deps.messages(), deps.now(), deps.whyWaiting) }),
    },
    {
      method: 'GET',
      pattern: /^\/api\/shaping$/,
      access: 'read',
      handler: () => ({ status: 200, body: { destinations: deps.limitDestinations() } }),
    },
    {
      method: 'GET',
      pattern: /^\/api\/messages$/,
      access: 'read',
      handler: (_p, url) => {
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
    },
    {
      method: 'GET',
      pattern: /^\/api\/messages\/([A-Za-z0-9]+)$/,
      access: 'read',
      handler: ([id]) => {
        const m = deps.message(id ?? '');
        return m ? { status: 200, body: messageDetail(m, deps.now(), deps.whyWaiting) } : notFound(id);
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/messages\/([A-Za-z0-9]+)\/retry$/,
      access: 'admin',
      action: 'retry',
      handler: ([id]) =>
        deps.retryNow(id ?? '') ? { status: 202, body: { id, retry: 'scheduled' } } : notFound(id),
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/messages\/([A-Za-z0-9]+)$/,
      access: 'admin',
      action: 'delete',
      handler: async ([id]) =>
        (await deps.delete(id ?? '')) ? { status: 200, body: { id, deleted: true } } : notFound(id),
    },
    {
      method: 'POST',
      pattern: /^\/drain$/,
      access: 'admin',
      action: 'drain',
      handler: () => {
        deps.drain();
        return { status: 202, body: { draining: true } };
      },
    },
    ...(deps.routes ?? []),
  ];
}

/** Runs the route that `method` and `url` name, without access checks (the caller made them). */
export async function runRoute(
  routes: readonly Route[],
  method: string,
  url: URL,
  req: IncomingMessage,
): Promise<Reply> {
  const onPath = routes.filter((r) => r.pattern.test(url.pathname));
  const route = onPath.find((r) => r.method === method);
  if (!route)
    return onPath.length > 0
      ? { status: 405, body: { error: 'method not allowed' } }
      : notFound(url.pathname);
  return route.handler(route.pattern.exec(url.pathname)?.slice(1) ?? [], url, req);
}

/** Serves `routes` behind the token checks: each route names the access it needs (auth.ts decides). */
export function serveAdmin(routes: readonly Route[], deps: AdminAccess): Server {
  /** Client address -> its failed-attempt bucket (absent: full). */
  const failures = new Map<string, FailureBucket>();

  const handle = async (req: IncomingMessage): Promise<Reply> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return { status: 400, body: { error: 'bad request target' } };
    }
    const onPath = routes.filter((r) => r.pattern.test(url.pathname));
    const route = onPath.find((r) => r.method === req.method);
    const required: Access = route?.access ?? (PROTECTED.test(url.pathname) ? 'read' : 'public');
    const client = req.socket.remoteAddress ?? '';
    const now = deps.now();
    const policy = deps.authThrottle();
    const decision = decideAccess({
      required,
      authorization: presentedAuthorization(req.headers),
      tokens: deps.tokens(),
      throttledForSeconds: required === 'public' ? 0 : throttledFor(failures.get(client), now, policy),
    });
    switch (decision.kind) {
      case 'throttled':
        deps.refused('throttled');
        return {
          status: 429,
          body: { error: 'too many failed attempts' },
          headers: { 'retry-after': String(decision.retryAfterSeconds) },
        };
      case 'unauthorized':
        deps.refused(decision.reason);
        failures.set(client, afterFailedAttempt(failures.get(client), now, policy));
        if (failures.size > MAX_BUCKETS)
          for (const [key, bucket] of failures) if (isFull(bucket, now, policy)) failures.delete(key);
        return {
          status: 401,
          body: { error: decision.reason === 'missing' ? 'token required' : 'invalid token' },
          headers: {
            'www-authenticate': decision.reason === 'missing' ? REALM : `${REALM}, error="invalid_token"`,
          },
        };
      case 'forbidden':
        deps.refused('forbidden');
        return {
          status: 403,
          body: { error: `${decision.principal.role} token may not ${route?.action ?? 'do this'}` },
          headers: { 'www-authenticate': `${REALM}, error="insufficient_scope"` },
        };
      case 'allow':
        break;
    }
    const reply = await runRoute(routes, req.method ?? '', url, req);
    const params = route?.pattern.exec(url.pathname)?.slice(1) ?? [];
    if (route?.action && decision.principal)
      deps.audit({
        action: route.action,
        tokenName: decision.principal.name,
        role: decision.principal.role,
        queueId: params[0],
        client,
        status: reply.status,
        ...(reply.audit ? { detail: reply.audit } : {}),
      });
    return reply;
  };

  return createServer((req: IncomingMessage, res: ServerResponse) => {
    handle(req).then(
      (reply) => send(res, reply),
      (err: unknown) => send(res, { status: 500, body: { error: String(err) } }),
    );
  });
}

function send(res: ServerResponse, reply: Reply): void {
  if (isStream(reply.body)) {
    res.writeHead(reply.status, {
      'content-type': reply.contentType ?? 'application/json',
      ...reply.headers,
    });
    void streamBody(res, reply.body);
    return;
  }
  const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body, null, 2);
  res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/json', ...reply.headers });
  res.end(text);
}

function isStream(body: unknown): body is AsyncIterable<string> {
  return typeof body === 'object' && body !== null && Symbol.asyncIterator in body;
}

/** Writes each piece, waiting for the socket to drain (an export of millions of lines). */
async function streamBody(res: ServerResponse, body: AsyncIterable<string>): Promise<void> {
  try {
    for await (const piece of body) {
      if (!res.write(piece))
        await new Promise((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
      if (res.destroyed) return;
    }
    res.end();
  } catch {
    res.destroy();
  }
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
function queueSummary(messages: Iterable<QueuedMessage>, now: number, why: WhyWaiting = () => undefined) {
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
