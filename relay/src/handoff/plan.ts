// Pure decisions of a handoff: which messages go, with which recipient states, to which peers, in
// which batches.
import type { Job, QueuedMessage } from '../scheduler/model.ts';
import type { RecipientState } from '../spool/record.ts';
import type { Hello } from './codec.ts';

/** What a probe of one peer address found. */
export interface PeerProbe {
  address: string;
  hello?: Hello;
  /** Why the peer did not answer a valid hello. */
  error?: string;
}

export interface Peer {
  address: string;
  instance: string;
}

/**
 * Peers that may receive mail: they answered a signed hello, are not this relay (its own address
 * is often among the Service's records) and are not draining themselves. One entry per instance:
 * a relay reachable under two addresses is one peer.
 */
export function readyPeers(probes: readonly PeerProbe[], self: string): Peer[] {
  const seen = new Set<string>([self]);
  const peers: Peer[] = [];
  for (const p of probes) {
    if (!p.hello || p.hello.draining || seen.has(p.hello.instance)) continue;
    seen.add(p.hello.instance);
    peers.push({ address: p.address, instance: p.hello.instance });
  }
  return peers;
}

/** Messages to transfer: still queued with at least one recipient not final. */
export function transferable(messages: Iterable<QueuedMessage>): QueuedMessage[] {
  const out: QueuedMessage[] = [];
  for (const m of messages) {
    if (m.deleted || m.jobs.size === 0) continue;
    if (m.recipients.some((r) => r.status === undefined || r.status === 'deferred')) out.push(m);
  }
  return out;
}

/**
 * The state of every recipient as the receiving relay must know it: final recipients (delivered,
 * bounced, expired, handed off) are never sent again; a pending one keeps its attempt count and,
 * when its destination was deferred, its next attempt time (retries and expiry continue, they do
 * not restart). Its last reply comes along for DSNs and the queue API.
 */
export function transferStates(message: QueuedMessage): RecipientState[] {
  const jobOf = new Map<number, Job>();
  for (const job of message.jobs.values()) for (const i of job.recipientIndexes) jobOf.set(i, job);
  return message.recipients.map((r) => {
    const job = jobOf.get(r.index);
    if (!job) {
      const state: RecipientState = {
        index: r.index,
        // A recipient with no job and no final status cannot happen; treat it as pending.
        status: r.status && r.status !== 'deferred' ? r.status : 'deferred',
        attempts: r.attempts,
      };
      if (r.reply !== undefined) state.reply = r.reply;
      if (r.delayNotified) state.delayNotified = true;
      return state;
    }
    const state: RecipientState = {
      index: r.index,
      status: 'deferred',
      attempts: Math.max(job.attempts, r.attempts),
    };
    if (job.state === 'deferred') state.nextAttemptAt = job.nextAttemptAt;
    const reply = r.reply ?? job.lastReply;
    if (reply !== undefined) state.reply = reply;
    if (r.delayNotified) state.delayNotified = true;
    return state;
  });
}

/** Consecutive groups of at most `maxItems` items and `maxBytes` bytes (one oversized item alone). */
export function batches<T>(
  items: readonly T[],
  size: (item: T) => number,
  maxItems: number,
  maxBytes: number,
): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (current.length > 0 && (current.length >= maxItems || bytes + n > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += n;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** `host:port` of every peer: the Service's addresses on the handoff port, then the static list. */
export function peerAddresses(
  serviceAddresses: readonly string[],
  port: number,
  staticPeers: readonly string[],
): string[] {
  const hostPort = (ip: string) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
  return [...new Set([...serviceAddresses.map(hostPort), ...staticPeers])];
}
