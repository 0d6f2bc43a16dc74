// The spool record codec. Pure: bytes in, values out, and back.
//
// A message file is   "MFQ1 <json length>\n" <envelope JSON> "\n" <message bytes>
// The envelope carries the message length and CRC-32, so a truncated or damaged file is detected
// on recovery and quarantined instead of being delivered as half a message.
//
// A streamed record (version 2) is written as the message arrives, so its envelope comes last:
//
//   "MFQ2\n" <message bytes> <envelope JSON> "\nMFQ2 <json length>\n"
//
// It is read from its last line back; the envelope carries the same length and CRC-32 (counted
// chunk by chunk as the bytes arrived), so a record cut anywhere is detected as before. Records of
// both versions decode with decodeMessage: spools written before version 2 recover unchanged.
//
// A recipient-state file ("<id>.rcpt") is JSON lines appended after delivery attempts; the last
// line for a recipient wins and a torn final line (crash mid-append) is ignored.
import { crc32 } from 'node:zlib';
import { crc32Combine, rememberCrc32 } from './crc.ts';

export interface ClientInfo {
  address: string;
  helo: string;
  user?: string;
}

export interface Envelope {
  id: string;
  /** Reverse-path; '' is the null sender (DSNs). */
  from: string;
  recipients: string[];
  /** Epoch milliseconds the 250 was sent. */
  receivedAt: number;
  client: ClientInfo;
  bodyLength: number;
  bodyCrc32: number;
  /**
   * Recipient states the message arrived with from a draining peer (handoff): attempts, next
   * attempt, recipients already done. The .rcpt log's lines, written here, come after them.
   */
  states?: RecipientState[];
  /** Instance id of the relay that handed the message over (duplicate accounting, logs). */
  handedFrom?: string;
  /** RFC 3461 parameters the client gave; absent when it gave none (and in older records). */
  dsn?: DsnParams;
}

/** NOTIFY values of RFC 3461 §4.1. */
export type DsnNotify = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** One recipient's RCPT TO parameters (RFC 3461 §4.1, §4.2), xtext already decoded. */
export interface RecipientDsn {
  notify?: DsnNotify[];
  /** `addr-type;address`, e.g. `rfc822;b@example.org`. */
  orcpt?: string;
}

/** The MAIL FROM parameters (RFC 3461 §4.3, §4.4) and each recipient's. */
export interface DsnParams {
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  /** By index into Envelope.recipients; null where the recipient had none. */
  recipients?: (RecipientDsn | null)[];
}

export type RecipientStatus = 'delivered' | 'bounced' | 'expired' | 'handedoff' | 'deferred';

export interface RecipientState {
  /** Index into Envelope.recipients. */
  index: number;
  status: RecipientStatus;
  attempts: number;
  /** Epoch ms of the next attempt, for deferred recipients. */
  nextAttemptAt?: number;
  /** Last SMTP reply or error text. */
  reply?: string;
  /** Its one "delayed" DSN was queued (RFC 3461 NOTIFY=DELAY): never a second one. */
  delayNotified?: boolean;
}

const MAGIC = 'MFQ1';
const MAX_HEADER = 64;
const STREAMED_MAGIC = 'MFQ2';
/** What a streamed record starts with; its message bytes follow as they arrive. */
export const STREAMED_RECORD_HEAD = Buffer.from(`${STREAMED_MAGIC}\n`, 'latin1');

/**
 * The end of a streamed record, written after its last message byte: the envelope, whose
 * bodyLength and bodyCrc32 were counted over the chunks, and the line that says where it starts.
 */
export function encodeStreamedTail(envelope: Envelope): Buffer {
  const json = Buffer.from(JSON.stringify(envelope));
  const line = Buffer.from(`\n${STREAMED_MAGIC} ${json.length}\n`, 'latin1');
  return Buffer.concat([json, line], json.length + line.length);
}

export function encodeMessage(envelope: Omit<Envelope, 'bodyLength' | 'bodyCrc32'>, body: Buffer): Buffer {
  return encodeMessageParts(envelope, [body]).record;
}

/**
 * The record of a message whose bytes are `parts` (the chunks as they arrived), copied once into
 * the record and checksummed part by part; `body` is the message inside the record (no copy).
 */
export function encodeMessageParts(
  envelope: Omit<Envelope, 'bodyLength' | 'bodyCrc32'>,
  parts: readonly Buffer[],
): { record: Buffer; body: Buffer; envelope: Envelope } {
  let bodyLength = 0;
  let bodyCrc32 = 0;
  for (const part of parts) {
    bodyLength += part.length;
    bodyCrc32 = crc32(part, bodyCrc32);
  }
  const full: Envelope = { ...envelope, bodyLength, bodyCrc32 };
  const json = Buffer.from(JSON.stringify(full));
  const head = Buffer.from(`${MAGIC} ${json.length}\n${json.toString('latin1')}\n`, 'latin1');
  const record = Buffer.concat([head, ...parts], head.length + bodyLength);
  // The journal frame's checksum of the whole record, without reading the body again.
  rememberCrc32(record, crc32Combine(crc32(head), bodyCrc32, bodyLength));
  return { record, body: record.subarray(head.length), envelope: full };
}

export type Decoded = { ok: true; envelope: Envelope; body: Buffer } | { ok: false; reason: string };

/** Bytes of a record's start and of its end that locateRecord needs (its header or trailer line). */
export const RECORD_PROBE_BYTES = MAX_HEADER + 1;

/** Where a record's envelope JSON and message bytes are, as offsets into the record. */
export interface RecordLayout {
  jsonStart: number;
  jsonLength: number;
  bodyStart: number;
  bodyEnd: number;
}

/**
 * A record's layout from its first and last RECORD_PROBE_BYTES (fewer when the record is shorter)
 * and its length, so a big record's envelope is found without reading its message. Pure.
 */
export function locateRecord(
  head: Buffer,
  tail: Buffer,
  length: number,
): ({ ok: true } & RecordLayout) | { ok: false; reason: string } {
  if (head.subarray(0, STREAMED_RECORD_HEAD.length).equals(STREAMED_RECORD_HEAD))
    return locateStreamed(tail, length);
  const newline = head.indexOf(10);
  if (newline < 0 || newline > MAX_HEADER) return { ok: false, reason: 'no header line' };
  const [magic, lengthText] = head.subarray(0, newline).toString('latin1').split(' ');
  if (magic !== MAGIC) return { ok: false, reason: 'bad magic' };
  const jsonLength = Number(lengthText);
  if (!Number.isInteger(jsonLength) || jsonLength <= 0) return { ok: false, reason: 'bad envelope length' };
  const jsonStart = newline + 1;
  const bodyStart = jsonStart + jsonLength + 1;
  if (length < bodyStart) return { ok: false, reason: 'truncated envelope' };
  return { ok: true, jsonStart, jsonLength, bodyStart, bodyEnd: length };
}

/** A version 2 record, read from its last line back (see the top of the file). */
function locateStreamed(
  tail: Buffer,
  length: number,
): ({ ok: true } & RecordLayout) | { ok: false; reason: string } {
  /** Offset of `tail` in the record. */
  const base = length - tail.length;
  if (tail[tail.length - 1] !== 10) return { ok: false, reason: 'no trailer line' };
  const newline = tail.lastIndexOf(10, tail.length - 2);
  const lineStart = newline === -1 && base > 0 ? -1 : base + newline + 1;
  if (lineStart <= STREAMED_RECORD_HEAD.length || length - lineStart > MAX_HEADER)
    return { ok: false, reason: 'no trailer line' };
  const [magic, lengthText, extra] = tail
    .subarray(lineStart - base, tail.length - 1)
    .toString('latin1')
    .split(' ');
  if (magic !== STREAMED_MAGIC || extra !== undefined) return { ok: false, reason: 'bad trailer line' };
  const jsonLength = Number(lengthText);
  if (!Number.isInteger(jsonLength) || jsonLength <= 0) return { ok: false, reason: 'bad envelope length' };
  const jsonStart = lineStart - 1 - jsonLength;
  if (jsonStart < STREAMED_RECORD_HEAD.length) return { ok: false, reason: 'truncated envelope' };
  return { ok: true, jsonStart, jsonLength, bodyStart: STREAMED_RECORD_HEAD.length, bodyEnd: jsonStart };
}

export function decodeMessage(file: Buffer): Decoded {
  const at = locateRecord(
    file.subarray(0, RECORD_PROBE_BYTES),
    file.subarray(Math.max(0, file.length - RECORD_PROBE_BYTES)),
    file.length,
  );
  if (!at.ok) return at;
  const envelope = recordEnvelope(
    file.subarray(at.jsonStart, at.jsonStart + at.jsonLength),
    at.bodyEnd - at.bodyStart,
  );
  if (!envelope.ok) return envelope;
  const body = file.subarray(at.bodyStart, at.bodyEnd);
  if (crc32(body) !== envelope.envelope.bodyCrc32) return { ok: false, reason: BODY_CRC_MISMATCH };
  return { ok: true, envelope: envelope.envelope, body };
}

/** Why a record whose message bytes do not match their CRC-32 is refused. */
export const BODY_CRC_MISMATCH = 'body checksum mismatch';

/**
 * The envelope parsed and held against the length of the message bytes the record holds; the
 * CRC-32 is the caller's to check (in one piece, or chunk by chunk as the bytes are sent).
 */
export function recordEnvelope(
  json: Buffer,
  bodyLength: number,
): { ok: true; envelope: Envelope } | { ok: false; reason: string } {
  let envelope: unknown;
  try {
    envelope = JSON.parse(json.toString('utf8'));
  } catch {
    return { ok: false, reason: 'envelope is not JSON' };
  }
  if (!isEnvelope(envelope)) return { ok: false, reason: 'envelope fields missing' };
  if (bodyLength !== envelope.bodyLength) {
    return { ok: false, reason: `body is ${bodyLength} bytes, expected ${envelope.bodyLength}` };
  }
  return { ok: true, envelope };
}

function isEnvelope(v: unknown): v is Envelope {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.id === 'string' &&
    typeof e.from === 'string' &&
    Array.isArray(e.recipients) &&
    e.recipients.length > 0 &&
    e.recipients.every((r) => typeof r === 'string') &&
    typeof e.receivedAt === 'number' &&
    typeof e.client === 'object' &&
    e.client !== null &&
    typeof e.bodyLength === 'number' &&
    typeof e.bodyCrc32 === 'number' &&
    (e.states === undefined || Array.isArray(e.states)) &&
    (e.handedFrom === undefined || typeof e.handedFrom === 'string') &&
    (e.dsn === undefined || isDsnParams(e.dsn, e.recipients.length))
  );
}

const NOTIFY = new Set<unknown>(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);

function isDsnParams(v: unknown, recipients: number): v is DsnParams {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  const optionalString = (x: unknown) => x === undefined || typeof x === 'string';
  const isRecipient = (r: unknown) => {
    if (r === null) return true;
    if (typeof r !== 'object') return false;
    const { notify, orcpt } = r as Record<string, unknown>;
    return (
      (notify === undefined || (Array.isArray(notify) && notify.every((n) => NOTIFY.has(n)))) &&
      optionalString(orcpt)
    );
  };
  return (
    (d.ret === undefined || d.ret === 'FULL' || d.ret === 'HDRS') &&
    optionalString(d.envid) &&
    (d.recipients === undefined ||
      (Array.isArray(d.recipients) && d.recipients.length === recipients && d.recipients.every(isRecipient)))
  );
}

export function encodeStateLine(state: RecipientState): string {
  return `${JSON.stringify(state)}\n`;
}

/**
 * Latest state per recipient index: the states the envelope arrived with (handoff), then the log's
 * lines in order. Lines that do not parse (a torn last write) are skipped.
 */
export function decodeStateLog(
  text: string,
  envelope: Pick<Envelope, 'recipients' | 'states'>,
): Map<number, RecipientState> {
  const states = new Map<number, RecipientState>();
  const take = (value: unknown) => {
    const s = value as RecipientState;
    if (typeof s?.index !== 'number' || s.index < 0 || s.index >= envelope.recipients.length) return;
    if (typeof s.status !== 'string' || typeof s.attempts !== 'number') return;
    states.set(s.index, s);
  };
  for (const s of envelope.states ?? []) take(s);
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      take(JSON.parse(line));
    } catch {
      continue;
    }
  }
  return states;
}
