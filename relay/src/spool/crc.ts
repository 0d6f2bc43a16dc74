// CRC-32 without a second pass over a message. A spool record is checksummed twice: its body
// (in the envelope, record.ts) and the whole record (the journal frame, batch.ts). The record's
// CRC is combined from its head's and its body's (zlib's crc32_combine, in GF(2): about 32 32x32
// bit-matrix squarings, whatever the length) and remembered for that record Buffer, so a 1 MB
// message is read once by crc32, not twice. Records are never modified after they are built.
import { crc32 } from 'node:zlib';

function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0, v = vec >>> 0; v !== 0; i++, v >>>= 1) if (v & 1) sum ^= mat[i]!;
  return sum >>> 0;
}

function gf2Square(square: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]!);
}

/** CRC-32 of A followed by B, from CRC-32(A), CRC-32(B) and B's length. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320; // the CRC-32 polynomial: the operator for one zero bit
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let crc = crcA >>> 0;
  let length = lengthB;
  // Apply length zero bytes to crcA, one bit of the length at a time (first square: one byte).
  for (;;) {
    gf2Square(even, odd);
    if (length % 2) crc = gf2Times(even, crc);
    length = Math.floor(length / 2);
    if (length === 0) break;
    gf2Square(odd, even);
    if (length % 2) crc = gf2Times(odd, crc);
    length = Math.floor(length / 2);
    if (length === 0) break;
  }
  return (crc ^ crcB) >>> 0;
}

const known = new WeakMap<Buffer, number>();

/** Records that `buffer` (never modified afterwards) has CRC-32 `crc`. */
export function rememberCrc32(buffer: Buffer, crc: number): void {
  known.set(buffer, crc);
}

/** CRC-32 of `buffer`: remembered, or computed. */
export function crc32Of(buffer: Buffer): number {
  return known.get(buffer) ?? crc32(buffer);
}
