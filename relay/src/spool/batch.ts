// The batch file codec. Pure: bytes in, values out, and back.
//
// One group commit writes one batch file: the records (record.ts) of every message accepted
// together, each in a frame
//
//   "MFR1 <record length> <CRC-32 of the record, 8 hex digits>\n" <record>
//
// The frame header lets recovery skip a damaged record and still find the next one; a frame cut
// short (a torn write, never acknowledged) ends the file. Frame checksums are on top of the
// record's own body checksum, so a damaged envelope is caught too.
//
// A streamed batch holds one message, written to the file as its DATA arrives (a big message is
// then never held whole in memory): its length and checksum are only known at the end, so its
// frame is a trailer
//
//   "MFS1\n" <record (record.ts version 2)> "MFT1 <record length> <CRC-32 of the record>\n"
//
// A streamed batch is renamed into journal/ only once whole, like any batch; one cut short anyway
// (a power loss before its fsync) has no valid trailer and is one damaged span.
//
// A done log ("<batch>.done") lists, one per line, the messages of the batch that are finished
// while others in it are still queued; a torn last line (no newline) is not counted.
import { crc32 } from 'node:zlib';
import { crc32Of } from './crc.ts';

const FRAME_MAGIC = 'MFR1';
const MAX_FRAME_HEADER = 40;
const TRAILER_MAGIC = 'MFT1';
/** What a streamed batch file starts with; its record follows. */
export const STREAMED_BATCH_HEAD = Buffer.from('MFS1\n', 'latin1');
const TRAILER_START = Buffer.from(`${TRAILER_MAGIC} `, 'latin1');

/** The trailer frame that closes a streamed batch, after its record. */
export function encodeStreamedTrailer(recordLength: number, recordCrc32: number): Buffer {
  return Buffer.from(
    `${TRAILER_MAGIC} ${recordLength} ${(recordCrc32 >>> 0).toString(16).padStart(8, '0')}\n`,
    'latin1',
  );
}

/** Where each record sits in an encoded batch. */
export interface FrameSpan {
  offset: number;
  length: number;
}

export interface EncodedBatch {
  file: Buffer;
  /** One per input record, in order: the record's bytes are file[offset, offset + length). */
  spans: FrameSpan[];
}

/** A batch as the buffers to write in order (frame headers and the records themselves, no copy). */
export interface BatchParts {
  parts: Buffer[];
  /** Bytes of all parts: the file's size. */
  size: number;
  spans: FrameSpan[];
}

export function encodeBatch(records: Buffer[]): EncodedBatch {
  const { parts, size, spans } = encodeBatchParts(records);
  return { file: Buffer.concat(parts, size), spans };
}

/**
 * The batch file as parts, for one vectored write: the records are not copied into a new buffer
 * (at 1 MB messages that copy was 8 % of the relay's busy time).
 */
export function encodeBatchParts(records: readonly Buffer[]): BatchParts {
  const parts: Buffer[] = [];
  const spans: FrameSpan[] = [];
  let offset = 0;
  for (const record of records) {
    const header = Buffer.from(
      `${FRAME_MAGIC} ${record.length} ${crc32Of(record).toString(16).padStart(8, '0')}\n`,
      'latin1',
    );
    parts.push(header, record);
    spans.push({ offset: offset + header.length, length: record.length });
    offset += header.length + record.length;
  }
  return { parts, size: offset, spans };
}

export interface DecodedFrame extends FrameSpan {
  record: Buffer;
}

export interface DamagedSpan {
  offset: number;
  length: number;
  reason: string;
}

export interface DecodedBatch {
  frames: DecodedFrame[];
  damaged: DamagedSpan[];
}

/** True when the file is a batch file (rather than a single-record file of an older relay). */
export function isBatchFile(file: Buffer): boolean {
  return file.subarray(0, FRAME_MAGIC.length + 1).toString('latin1') === `${FRAME_MAGIC} `;
}

export function decodeBatch(file: Buffer): DecodedBatch {
  if (file.subarray(0, STREAMED_BATCH_HEAD.length).equals(STREAMED_BATCH_HEAD))
    return decodeStreamedBatch(file);
  const frames: DecodedFrame[] = [];
  const damaged: DamagedSpan[] = [];
  let pos = 0;
  while (pos < file.length) {
    const tail = (reason: string) => damaged.push({ offset: pos, length: file.length - pos, reason });
    const newline = file.indexOf(10, pos);
    if (newline < 0 || newline - pos > MAX_FRAME_HEADER) {
      tail('torn frame header');
      break;
    }
    const [magic, lengthText, crcText, extra] = file.subarray(pos, newline).toString('latin1').split(' ');
    const length = Number(lengthText);
    if (
      magic !== FRAME_MAGIC ||
      extra !== undefined ||
      !/^[1-9][0-9]*$/.test(lengthText ?? '') ||
      !/^[0-9a-f]{8}$/.test(crcText ?? '')
    ) {
      tail('bad frame header');
      break;
    }
    const offset = newline + 1;
    if (offset + length > file.length) {
      tail(`truncated frame: ${file.length - offset} of ${length} bytes`);
      break;
    }
    const record = file.subarray(offset, offset + length);
    if (crc32(record) !== parseInt(crcText!, 16)) {
      damaged.push({ offset: pos, length: offset + length - pos, reason: 'frame checksum mismatch' });
    } else {
      frames.push({ offset, length, record });
    }
    pos = offset + length;
  }
  return { frames, damaged };
}

/** A streamed batch: its one record, or the whole file as one damaged span. */
function decodeStreamedBatch(file: Buffer): DecodedBatch {
  const damaged = (reason: string): DecodedBatch => ({
    frames: [],
    damaged: [{ offset: 0, length: file.length, reason }],
  });
  // The trailer follows the record's last byte directly; nothing in it spells its magic.
  const lineStart = file.lastIndexOf(TRAILER_START);
  if (file[file.length - 1] !== 10 || lineStart < 0 || file.length - lineStart > MAX_FRAME_HEADER)
    return damaged('streamed batch without its trailer');
  const [magic, lengthText, crcText, extra] = file
    .subarray(lineStart, file.length - 1)
    .toString('latin1')
    .split(' ');
  if (
    magic !== TRAILER_MAGIC ||
    extra !== undefined ||
    !/^[1-9][0-9]*$/.test(lengthText ?? '') ||
    !/^[0-9a-f]{8}$/.test(crcText ?? '')
  )
    return damaged('streamed batch without its trailer');
  const offset = STREAMED_BATCH_HEAD.length;
  const length = Number(lengthText);
  if (offset + length !== lineStart)
    return damaged(`streamed record is ${lineStart - offset} bytes, expected ${length}`);
  const record = file.subarray(offset, lineStart);
  if (crc32(record) !== parseInt(crcText!, 16)) return damaged('frame checksum mismatch');
  return { frames: [{ offset, length, record }], damaged: [] };
}

export function encodeDoneLine(id: string): string {
  return `${id}\n`;
}

/** Ids of finished messages; a last line without its newline was torn and is not counted. */
export function decodeDoneLog(text: string): Set<string> {
  const lines = text.split('\n');
  lines.pop();
  return new Set(lines.filter((line) => line.length > 0));
}
