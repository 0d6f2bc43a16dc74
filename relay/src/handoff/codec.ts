// The handoff wire format. Pure.
//
// A request body is a batch of spool records (spool/record.ts, unchanged: envelope with its
// per-recipient states, and the message bytes under their CRC-32), each framed as
// "<decimal length>\n<record>". The reply is JSON, one entry per record in order.
import { decodeEvents } from '../events/codec.ts';
import type { MailEvent } from '../events/event.ts';

export interface HandoffReply {
  /** Instance id of the replying relay. */
  instance: string;
  results: HandoffResult[];
}

/** stored: fsynced now; duplicate: already held (or received before) by this relay; refused: not kept. */
export type HandoffResult =
  { id: string; result: 'stored' | 'duplicate' } | { id: string; result: 'refused'; reason: string };

export interface Hello {
  instance: string;
  draining: boolean;
}

const MAX_FRAME_HEADER = 12;

export function encodeBatch(records: readonly Buffer[]): Buffer {
  return Buffer.concat(records.flatMap((r) => [Buffer.from(`${r.length}\n`), r]));
}

export type DecodedBatch = { ok: true; records: Buffer[] } | { ok: false; reason: string };

export function decodeBatch(body: Buffer): DecodedBatch {
  const records: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const newline = body.indexOf(10, at);
    if (newline < 0 || newline - at > MAX_FRAME_HEADER) return { ok: false, reason: 'bad frame header' };
    const text = body.subarray(at, newline).toString('latin1');
    const length = Number(text);
    if (!/^\d+$/.test(text) || length <= 0) return { ok: false, reason: 'bad frame length' };
    const end = newline + 1 + length;
    if (end > body.length) return { ok: false, reason: 'truncated frame' };
    records.push(body.subarray(newline + 1, end));
    at = end;
  }
  return { ok: true, records };
}

export function parseReply(text: string, expected: number): HandoffReply | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const v = value as HandoffReply;
  if (typeof v?.instance !== 'string' || !Array.isArray(v.results) || v.results.length !== expected)
    return undefined;
  const known = ['stored', 'duplicate', 'refused'];
  if (!v.results.every((r) => typeof r?.id === 'string' && known.includes(r.result))) return undefined;
  return v;
}

export function parseHello(text: string): Hello | undefined {
  try {
    const v = JSON.parse(text) as Hello;
    return typeof v?.instance === 'string' && typeof v.draining === 'boolean'
      ? { instance: v.instance, draining: v.draining }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An events request body is the outbox's own lines (events/codec.ts: `<crc32> <json>\n`), so a
 * damaged line is seen; the reply says how many the peer fsynced into its outbox (all or none).
 */
export interface EventsReply {
  instance: string;
  stored: number;
}

export type DecodedEventsBatch = { ok: true; events: MailEvent[] } | { ok: false; reason: string };

export function decodeEventsBatch(body: Buffer): DecodedEventsBatch {
  const decoded = decodeEvents(body, 0);
  if (decoded.damaged > 0) return { ok: false, reason: `${decoded.damaged} damaged event lines` };
  if (decoded.end !== body.length) return { ok: false, reason: 'truncated event line' };
  if (decoded.events.length === 0) return { ok: false, reason: 'no events' };
  return { ok: true, events: decoded.events.map((e) => e.event) };
}

export function parseEventsReply(text: string, expected: number): EventsReply | undefined {
  try {
    const v = JSON.parse(text) as EventsReply;
    return typeof v?.instance === 'string' && v.stored === expected
      ? { instance: v.instance, stored: v.stored }
      : undefined;
  } catch {
    return undefined;
  }
}
