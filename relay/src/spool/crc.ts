// CRC-32 without a second pass over a message. A spool record is checksummed twice: its body
// (in the envelope, record.ts) and the whole record (the journal frame, batch.ts). The record's
// CRC is combined from its head's and its body's (zlib's crc32_combine) and remembered for that
// record Buffer, so a 1 MB message is read once by crc32, not twice. Records are never modified
// after they are built.
//
// The combination is zlib 1.2.12's: multiply CRC(A) by x^(8 * length of B) modulo the CRC
// polynomial, the power built from a table of x^(2^n), one product per bit of the length (about
// 17 products of 32 steps for 100 KB). The older GF(2) matrix method squared 32x32 bit matrices
// per bit of the length, about 30 times the work (measured: docs/benchmarks.md, Figures behind
// code choices).
import { crc32 } from 'node:zlib';

/** The CRC-32 polynomial, reflected. */
const POLY = 0xedb88320;

/** a(x) * b(x) modulo the polynomial (reflected bit order: x^0 is the top bit). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x2n[n] = x^(2^n) modulo the polynomial. */
const x2n = new Uint32Array(32);
x2n[0] = 0x40000000; // x^1
for (let n = 1; n < 32; n++) x2n[n] = multModP(x2n[n - 1]!, x2n[n - 1]!);

/** x^(n * 2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  for (; n > 0; n = Math.floor(n / 2), k++) if (n % 2) p = multModP(x2n[k & 31]!, p);
  return p;
}

/** CRC-32 of A followed by B, from CRC-32(A), CRC-32(B) and B's length. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  // x^(8 * lengthB): k = 3 starts the table at x^(2^3) per unit of length.
  return (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ crcB) >>> 0;
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
