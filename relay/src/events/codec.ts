// The outbox's record format: one line per event, `<crc32 as 8 hex> <event JSON>\n`. A line whose
// CRC does not match (a write torn by a crash, a flipped bit) is skipped and counted; a last line
// without its newline is not complete yet. Pure.
import { crc32 } from 'node:zlib';
import type { MailEvent } from './event.ts';

const NEWLINE = 0x0a;

export function encodeEvent(event: MailEvent): Buffer {
  const json = JSON.stringify(event);
  return Buffer.from(`${crc32(json).toString(16).padStart(8, '0')} ${json}\n`);
}

export interface DecodedEvent {
  event: MailEvent;
  /** Offset just past this record's newline. */
  end: number;
}

export interface DecodedRange {
  events: DecodedEvent[];
  /** Offset just past the last complete line read (damaged lines included). */
  end: number;
  /** Complete lines that did not decode. */
  damaged: number;
}

/**
 * The records of `buffer` (bytes of a segment starting at `base`), at most `max` of them. Stops
 * before an incomplete last line.
 */
export function decodeEvents(buffer: Buffer, base: number, max = Infinity): DecodedRange {
  const out: DecodedRange = { events: [], end: base, damaged: 0 };
  let start = 0;
  while (out.events.length < max) {
    const newline = buffer.indexOf(NEWLINE, start);
    if (newline < 0) break;
    const event = decodeLine(buffer.subarray(start, newline).toString('utf8'));
    start = newline + 1;
    out.end = base + start;
    if (event) out.events.push({ event, end: out.end });
    else out.damaged++;
  }
  return out;
}

function decodeLine(line: string): MailEvent | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return undefined;
  try {
    const event = JSON.parse(json) as MailEvent;
    return typeof event.id === 'string' && typeof event.type === 'string' ? event : undefined;
  } catch {
    return undefined;
  }
}

/** The body of one POST: the events as JSON lines (application/x-ndjson). */
export function batchBody(events: readonly MailEvent[]): Buffer {
  return Buffer.from(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
}
