// The sending side of a handoff: a draining relay transfers what is left of its queue to ready
// peers of its pool. A message leaves this relay's spool only after a peer's signed reply says it
// is stored (fsynced) or already held there; a kill at any moment leaves at most a copy on both
// sides, which the receiver recognises by message id.
import { lookup, Resolver } from 'node:dns/promises';
import type { Logger } from '../../../contract/log.ts';
import type { QueuedMessage } from '../scheduler/model.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import type { Spool } from '../spool/store.ts';
import { encodeMessage } from '../spool/record.ts';
import { AUTH_HEADER, REPLY_HEADER, signRequest, verifyReply } from './auth.ts';
import { encodeBatch, parseHello, parseReply, type HandoffResult } from './codec.ts';
import {
  batches,
  peerAddresses,
  readyPeers,
  transferStates,
  transferable,
  type Peer,
  type PeerProbe,
} from './plan.ts';
import { HELLO_PATH, MESSAGES_PATH } from './server.ts';

const BATCH_MESSAGES = 100;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Requests in flight per peer: enough to keep its group commit full. */
const PER_PEER = 2;
const REQUEST_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 2_000;

export interface HandoffTarget {
  port: number;
  service?: string;
  peers: string[];
  /** DNS servers for the Service name; empty: the system resolver (search domains apply). */
  dnsServers: string[];
}

export interface HandoffSenderDeps {
  instance: string;
  secret: Buffer;
  target: HandoffTarget;
  messages(): Iterable<QueuedMessage>;
  readBody(id: string): Promise<Buffer | undefined>;
  /** The peer holds the message now: record it as handed off and remove it here. */
  handedOff(message: QueuedMessage, peer: Peer, result: 'stored' | 'duplicate'): Promise<void>;
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
  now(): number;
}

/** What a relay lends a handoff (a drain's or an evacuation's): its queue, its spool's bodies, and
 * how a message handed off is accounted and removed. */
export interface QueueHolder {
  /** Random id of this relay process; a peer answering with it is this relay. */
  readonly instance: string;
  readonly scheduler: Pick<Scheduler, 'messages'>;
  readonly spool: Pick<Spool, 'readBody'>;
  readonly log: Logger;
  /** A peer holds the message now: account it as handed off and remove it here. */
  handedOff(message: QueuedMessage, peer: string, result: 'stored' | 'duplicate'): Promise<void>;
}

/** The sender of `holder`'s queue to `target`, signed with `secret` (the target pool's). */
export function queueSender(holder: QueueHolder, target: HandoffTarget, secret: Buffer): HandoffSenderDeps {
  return {
    instance: holder.instance,
    secret,
    target,
    messages: () => holder.scheduler.messages.values(),
    readBody: (id) => holder.spool.readBody(id),
    handedOff: (message, peer, result) => holder.handedOff(message, peer.address, result),
    log: holder.log,
    now: Date.now,
  };
}

export interface HandoffSummary {
  peers: number;
  sent: number;
  duplicates: number;
  /** Messages still here: no peer, refused, or the deadline came first. */
  left: number;
}

/** Addresses of the pool's relays: the Service's A/AAAA records on the handoff port, plus static peers. */
async function discoverPeers(target: HandoffTarget): Promise<string[]> {
  const found: string[] = [];
  if (target.service && target.dnsServers.length === 0) {
    const records = await lookup(target.service, { all: true }).catch(() => []);
    found.push(...records.map((r) => r.address));
  } else if (target.service) {
    const resolver = new Resolver({ timeout: PROBE_TIMEOUT_MS, tries: 2 });
    resolver.setServers(target.dnsServers);
    for (const resolve of [resolver.resolve4.bind(resolver), resolver.resolve6.bind(resolver)]) {
      found.push(...(await resolve(target.service).catch(() => [] as string[])));
    }
  }
  return peerAddresses(found, target.port, target.peers);
}

/** A signed request to a peer; the reply counts only when its signature verifies. */
export async function call(
  secret: Buffer,
  address: string,
  method: 'GET' | 'POST',
  path: string,
  body: Buffer,
  timeoutMs: number,
  now: number,
): Promise<string> {
  const headers: Record<string, string> = {
    [AUTH_HEADER]: signRequest(secret, { method, path, time: now, body }),
  };
  const init: RequestInit = { method, headers, signal: AbortSignal.timeout(timeoutMs) };
  if (method === 'POST') {
    headers['content-type'] = 'application/octet-stream';
    init.body = new Uint8Array(body);
  }
  const res = await fetch(`http://${address}${path}`, init);
  const text = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`${res.status} ${text.toString('utf8').slice(0, 200)}`);
  if (!verifyReply(secret, now, text, res.headers.get(REPLY_HEADER)))
    throw new Error('reply signature does not verify');
  return text.toString('utf8');
}

export async function probePeers(
  deps: Pick<HandoffSenderDeps, 'secret' | 'target' | 'now'>,
): Promise<PeerProbe[]> {
  const addresses = await discoverPeers(deps.target);
  return Promise.all(
    addresses.map(async (address): Promise<PeerProbe> => {
      try {
        const hello = parseHello(
          await call(deps.secret, address, 'GET', HELLO_PATH, Buffer.alloc(0), PROBE_TIMEOUT_MS, deps.now()),
        );
        return hello ? { address, hello } : { address, error: 'malformed hello' };
      } catch (err) {
        return { address, error: String((err as Error).message ?? err) };
      }
    }),
  );
}

/** Transfers the queue to ready peers until it is empty, no peer takes more, or `deadline`. */
export async function handOffQueue(deps: HandoffSenderDeps, deadline: number): Promise<HandoffSummary> {
  const probes = await probePeers(deps);
  let peers = readyPeers(probes, deps.instance);
  deps.log('info', 'handoff peers', {
    ready: peers.map((p) => p.address),
    skipped: probes
      .filter((p) => !peers.some((q) => q.address === p.address))
      .map((p) => ({
        address: p.address,
        why:
          p.error ??
          (p.hello?.instance === deps.instance ? 'self' : p.hello?.draining ? 'draining' : 'same relay'),
      })),
  });
  const summary: HandoffSummary = { peers: peers.length, sent: 0, duplicates: 0, left: 0 };
  const messages = transferable(deps.messages());
  // Records are built lazily per batch so a large queue is not held in memory twice.
  const pending = batches(messages, (m) => m.envelope.bodyLength, BATCH_MESSAGES, BATCH_BYTES);
  const worker = async (): Promise<void> => {
    for (let batch = pending.shift(); batch; batch = pending.shift()) {
      const peer = peers[Math.floor(Math.random() * peers.length)];
      if (!peer || deps.now() >= deadline) {
        pending.unshift(batch);
        return;
      }
      try {
        await sendBatch(deps, peer, batch, summary, deadline);
      } catch (err) {
        // The peer went away or refused the batch: nothing of it was removed here; another takes it.
        deps.log('warn', 'handoff batch failed, trying another peer', {
          peer: peer.address,
          messages: batch.length,
          err: String((err as Error).message ?? err),
        });
        peers = peers.filter((p) => p !== peer);
        pending.push(batch);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, peers.length * PER_PEER) }, worker));
  summary.left = transferable(deps.messages()).length;
  return summary;
}

async function sendBatch(
  deps: HandoffSenderDeps,
  peer: Peer,
  batch: QueuedMessage[],
  summary: HandoffSummary,
  deadline: number,
): Promise<void> {
  const items: { message: QueuedMessage; record: Buffer }[] = [];
  for (const message of batch) {
    if (message.deleted) continue;
    const body = await deps.readBody(message.envelope.id);
    if (!body) continue; // quarantined meanwhile: never send part of a message
    const { bodyLength: _length, bodyCrc32: _crc, ...envelope } = message.envelope;
    const record = encodeMessage(
      { ...envelope, states: transferStates(message), handedFrom: deps.instance },
      body,
    );
    items.push({ message, record });
  }
  if (items.length === 0) return;
  const timeout = Math.max(1000, Math.min(REQUEST_TIMEOUT_MS, deadline - deps.now()));
  const text = await call(
    deps.secret,
    peer.address,
    'POST',
    MESSAGES_PATH,
    encodeBatch(items.map((i) => i.record)),
    timeout,
    deps.now(),
  );
  const reply = parseReply(text, items.length);
  if (!reply) throw new Error('malformed reply');
  const refused: HandoffResult[] = [];
  for (const [i, result] of reply.results.entries()) {
    const item = items[i]!;
    if (result.id !== item.message.envelope.id || result.result === 'refused') {
      refused.push(result);
      continue;
    }
    await deps.handedOff(item.message, peer, result.result);
    summary.sent++;
    if (result.result === 'duplicate') summary.duplicates++;
  }
  if (refused.length > 0) {
    deps.log('warn', 'handoff peer refused messages; they stay here', {
      peer: peer.address,
      refused: refused.length,
      reason: refused[0]!.result === 'refused' ? refused[0]!.reason : 'id mismatch',
    });
  }
}
