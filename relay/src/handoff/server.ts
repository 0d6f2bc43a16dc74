// The receiving side of a handoff: the internal port where draining peers of the same pool send
// their queues. Only requests signed with the pool's secret are read; what is stored has been
// fsynced through the spool's group commit before the (signed) reply acknowledges it. None of the
// public listeners' policy (networks, AUTH, sending domains, rate limits) applies: this mail was
// accepted by the pool already.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { decodeMessage, type Envelope } from '../spool/record.ts';
import { AUTH_HEADER, REPLY_HEADER, signReply, verifyRequest } from './auth.ts';
import {
  decodeBatch,
  decodeEventsBatch,
  type EventsReply,
  type HandoffReply,
  type HandoffResult,
  type Hello,
} from './codec.ts';
import type { MailEvent } from '../events/event.ts';

export const HELLO_PATH = '/handoff/v1/hello';
export const MESSAGES_PATH = '/handoff/v1/messages';
/** Unsent webhook events of a draining peer's outbox (handoff/events.ts). */
export const EVENTS_PATH = '/handoff/v1/events';
/** A request larger than this is refused before it is read whole. */
const MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** Ids received are remembered this many at most (a resent batch after a sender crash is a duplicate). */
const SEEN_IDS = 1_000_000;

export interface HandoffServerDeps {
  instance: string;
  /** The pool secret in force (re-read on reload); undefined refuses everything. */
  secret(): Buffer | undefined;
  /** A draining relay refuses handoffs: its queue is about to move itself. */
  draining(): boolean;
  /** False when the spool is below its free-space floor. */
  hasSpace(): boolean;
  /** True when the message is queued here already. */
  holds(id: string): boolean;
  /** Makes the message durable (group commit, fsync) and queues it; rejects when it could not. */
  store(envelope: Envelope, body: Buffer): Promise<void>;
  counted(result: HandoffResult['result']): void;
  /**
   * Where events handed over go: fsyncs them into this relay's outbox, rejects when it could not.
   * Undefined: this relay writes no events (no `events` config) and refuses them.
   */
  storeEvents(): ((events: MailEvent[]) => Promise<void>) | undefined;
  eventsCounted(result: 'stored' | 'refused', count: number): void;
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
  now(): number;
}

export class HandoffServer {
  private readonly deps: HandoffServerDeps;
  private server: Server | undefined;
  /** Ids stored through handoff, oldest first, bounded by SEEN_IDS. */
  private readonly seen = new Set<string>();
  /**
   * Stores in progress by id: a resent copy waits for the first one's outcome rather than being
   * acknowledged as a duplicate of something that may still fail to be written.
   */
  private readonly storing = new Map<string, Promise<boolean>>();

  constructor(deps: HandoffServerDeps) {
    this.deps = deps;
  }

  async listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_REQUEST_BYTES) return reply(res, 413, Buffer.from('too large'));
      const body = await readBody(req);
      const secret = this.deps.secret();
      const path = (req.url ?? '').split('?')[0]!;
      const method = req.method ?? '';
      if (!secret) return reply(res, 503, Buffer.from('no handoff secret'));
      const header = req.headers[AUTH_HEADER];
      const verdict = verifyRequest(
        secret,
        typeof header === 'string' ? header : undefined,
        { method, path, body },
        this.deps.now(),
      );
      if (!verdict.ok) {
        this.deps.log('warn', 'handoff request refused', {
          reason: verdict.reason,
          peer: req.socket.remoteAddress,
        });
        return reply(res, 401, Buffer.from(verdict.reason));
      }
      const signed = (status: number, value: unknown) => {
        const out = Buffer.from(JSON.stringify(value));
        res.setHeader(REPLY_HEADER, signReply(secret, verdict.time, out));
        reply(res, status, out);
      };
      if (method === 'GET' && path === HELLO_PATH) {
        const hello: Hello = { instance: this.deps.instance, draining: this.deps.draining() };
        return signed(200, hello);
      }
      if (method !== 'POST' || (path !== MESSAGES_PATH && path !== EVENTS_PATH))
        return reply(res, 404, Buffer.from('not found'));
      if (this.deps.draining()) return reply(res, 503, Buffer.from('draining'));
      if (path === EVENTS_PATH) return await this.receiveEvents(body, signed, res);
      if (!this.deps.hasSpace()) return reply(res, 503, Buffer.from('spool below minFreeBytes'));
      const batch = decodeBatch(body);
      if (!batch.ok) return reply(res, 400, Buffer.from(batch.reason));
      const results = await Promise.all(batch.records.map((record) => this.receive(record)));
      const answer: HandoffReply = { instance: this.deps.instance, results };
      signed(200, answer);
    } catch (err) {
      this.deps.log('error', 'handoff request failed', { err: String(err) });
      if (!res.headersSent) reply(res, 500, Buffer.from('internal error'));
    }
  }

  /** A batch of events: all fsynced into the outbox before the signed reply, or none acknowledged. */
  private async receiveEvents(
    body: Buffer,
    signed: (status: number, value: unknown) => void,
    res: ServerResponse,
  ): Promise<void> {
    const store = this.deps.storeEvents();
    if (!store) return reply(res, 503, Buffer.from('no events outbox'));
    const batch = decodeEventsBatch(body);
    if (!batch.ok) return reply(res, 400, Buffer.from(batch.reason));
    try {
      await store(batch.events);
    } catch (err) {
      this.deps.eventsCounted('refused', batch.events.length);
      return reply(res, 503, Buffer.from(`events not stored: ${String((err as Error).message ?? err)}`));
    }
    this.deps.eventsCounted('stored', batch.events.length);
    const answer: EventsReply = { instance: this.deps.instance, stored: batch.events.length };
    signed(200, answer);
  }

  /** One record: refused when damaged, a duplicate when already held or received, else stored. */
  private async receive(record: Buffer): Promise<HandoffResult> {
    const decoded = decodeMessage(record);
    if (!decoded.ok) {
      this.deps.counted('refused');
      return { id: '', result: 'refused', reason: decoded.reason };
    }
    const { envelope, body } = decoded;
    const id = envelope.id;
    const inProgress = this.storing.get(id);
    if ((inProgress && (await inProgress)) || this.seen.has(id) || this.deps.holds(id)) {
      this.deps.counted('duplicate');
      return { id, result: 'duplicate' };
    }
    let failure: string | undefined;
    const stored = this.deps.store(envelope, body).then(
      () => true,
      (err: unknown) => {
        failure = err instanceof Error ? err.message : String(err);
        return false;
      },
    );
    this.storing.set(id, stored);
    const ok = await stored;
    this.storing.delete(id);
    if (!ok) {
      this.deps.counted('refused');
      return { id, result: 'refused', reason: failure ?? 'not stored' };
    }
    this.remember(id);
    this.deps.counted('stored');
    return { id, result: 'stored' };
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > SEEN_IDS) this.seen.delete(this.seen.values().next().value!);
  }
}

function reply(res: ServerResponse, status: number, body: Buffer): void {
  res.statusCode = status;
  res.setHeader('content-length', body.length);
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > MAX_REQUEST_BYTES) throw new Error('request too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
