import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  finishScan,
  hasCleanLines,
  initialScan,
  knownCleanLines,
  rememberCleanLines,
  scanChunk,
  type ScanState,
} from './bare-newline.ts';
import { blockScanner } from './line-scan-wasm.ts';

function scan(...chunks: string[]): string | null {
  let state = initialScan;
  for (const chunk of chunks) state = scanChunk(state, Buffer.from(chunk, 'binary'));
  return finishScan(state);
}

describe('bare newline scanner', () => {
  // The smtpsmug vectors, as they appear inside message data (the client then sends the real end).
  const vectors: Array<[string, string, string]> = [
    ['\\n.\\n', 'a\r\nb\n.\nMAIL FROM:<x@evil.example>\r\n', 'bare-lf'],
    ['\\r.\\r', 'a\r\nb\r.\rMAIL FROM:<x@evil.example>\r\n', 'bare-cr'],
    ['\\r.\\n', 'a\r\nb\r.\nMAIL\r\n', 'bare-cr'],
    ['\\n.\\r', 'a\r\nb\n.\rMAIL\r\n', 'bare-lf'],
    ['\\n.\\r\\n', 'a\r\nb\n.\r\nMAIL\r\n', 'bare-lf'],
    ['\\r\\n.\\n', 'a\r\nb\r\n.\nMAIL\r\n', 'bare-lf'],
    ['\\r.\\r\\n', 'a\r\nb\r.\r\nMAIL\r\n', 'bare-cr'],
    ['\\r\\n.\\r', 'a\r\nb\r\n.\rMAIL\r\n', 'bare-cr'],
    ['\\r\\n\\0.\\r\\n', 'a\r\nb\r\n\0.\r\nMAIL\r\n', 'nul'],
    ['\\r\\n.\\0\\r\\n', 'a\r\nb\r\n.\0\r\nMAIL\r\n', 'nul'],
  ];
  for (const [name, data, found] of vectors) {
    test(`finds ${found} in the ${name} vector`, () => assert.equal(scan(data), found));
  }
  test('accepts CRLF-only data', () => assert.equal(scan('Subject: hi\r\n\r\nbody\r\n'), null));
  test('accepts a CRLF split across two chunks', () =>
    assert.equal(scan('line one\r', '\nline two\r\n'), null));
  test('finds a CR at the end of one chunk followed by text in the next', () =>
    assert.equal(scan('line\r', 'x\r\n'), 'bare-cr'));
  test('finds a CR at the very end of the data', () => assert.equal(scan('line\r\n', 'tail\r'), 'bare-cr'));
  test('finds an LF at the start of a chunk after a chunk ending in text', () =>
    assert.equal(scan('line', '\nx'), 'bare-lf'));
  test('keeps the first finding once found', () => assert.equal(scan('a\0', 'b\n'), 'nul'));
});

/** The byte-by-byte scanner the native one replaced: the reference for the property test. */
function referenceScan(state: ScanState, chunk: Uint8Array): ScanState {
  if (state.found) return state;
  let pendingCR = state.pendingCR;
  for (const byte of chunk) {
    if (pendingCR && byte !== 0x0a) return { pendingCR: false, found: 'bare-cr' };
    if (byte === 0x0a && !pendingCR) return { pendingCR: false, found: 'bare-lf' };
    if (byte === 0x00) return { pendingCR: false, found: 'nul' };
    pendingCR = byte === 0x0d;
  }
  return { pendingCR, found: null };
}

test('the native scan finds what a byte-by-byte scan finds, however the data is chunked', () => {
  // Bytes drawn mostly from CR, LF, NUL, dot and a letter, so every adjacency occurs.
  const byte = fc.oneof(fc.constantFrom(0x0d, 0x0a, 0x00, 0x2e, 0x61), fc.integer({ min: 0, max: 255 }));
  const crlfText = fc
    .array(fc.oneof(fc.constant('\r\n'), fc.constant('a'), fc.constant('.')), { maxLength: 40 })
    .map((parts) => [...Buffer.from(parts.join(''), 'latin1')]);
  fc.assert(
    fc.property(
      fc.oneof(fc.array(byte, { maxLength: 60 }), crlfText),
      fc.array(fc.nat(), { maxLength: 5 }),
      fc.boolean(),
      (bytes, cuts, pending) => {
        const data = Buffer.from(bytes);
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points, data.length]
          .slice(1)
          .map((end, k, ends) => data.subarray(k ? ends[k - 1] : 0, end));
        let native: ScanState = { pendingCR: pending, found: null };
        let reference: ScanState = native;
        for (const chunk of chunks) {
          native = scanChunk(native, chunk);
          reference = referenceScan(reference, chunk);
          assert.deepEqual(native, reference);
        }
        assert.equal(finishScan(native), finishScan(reference));
      },
    ),
    { numRuns: 3000 },
  );
});

test('the WebAssembly SIMD kernel compiles on this Node, so the fast path is the one tested', () => {
  assert.notEqual(blockScanner(), null);
});

/** Chunks of `data` cut at `cuts` (modulo its length). */
const cutInto = (data: Buffer, cuts: number[]) => {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  return [0, ...points, data.length].slice(1).map((end, k, ends) => data.subarray(k ? ends[k - 1] : 0, end));
};

test('the kernel and the native scan find what a byte-by-byte scan finds in mail-like data of many blocks', () => {
  // CRLF lines (dots, text) several 16-byte blocks long, with up to two bad bytes put anywhere.
  const line = fc.array(fc.constantFrom('a', '.', 'xyz'), { maxLength: 30 }).map((p) => `${p.join('')}\r\n`);
  const text = fc.array(line, { maxLength: 20 }).map((lines) => Buffer.from(lines.join(''), 'latin1'));
  const bad = fc.array(fc.tuple(fc.nat(), fc.constantFrom(0x0d, 0x0a, 0x00)), { maxLength: 2 });
  fc.assert(
    fc.property(
      text,
      bad,
      fc.array(fc.nat(), { maxLength: 4 }),
      fc.boolean(),
      (clean, faults, cuts, pending) => {
        const data = Buffer.from(clean);
        for (const [at, byte] of faults) if (data.length) data[at % data.length] = byte;
        let native: ScanState = { pendingCR: pending, found: null };
        let reference: ScanState = native;
        for (const chunk of cutInto(data, cuts)) {
          native = scanChunk(native, chunk);
          reference = referenceScan(reference, chunk);
          assert.deepEqual(native, reference);
        }
      },
    ),
    { numRuns: 3000 },
  );
});

test('findings at and across the 64 KiB windows the kernel scans one call at a time', () => {
  // 2000 lines of 80 bytes and a 7-byte tail: the last bytes are not a whole block.
  const clean = () => `${`${'x'.repeat(78)}\r\n`.repeat(2000)}abcde\r\n`;
  const cases: [string, (b: Buffer) => void, string | null][] = [
    ['no finding in 160 KB', () => undefined, null],
    ['a CRLF split by the window boundary', (b) => b.write('\r\n', 65535, 'latin1'), null],
    ['a bare LF first in the second window', (b) => (b[65536] = 0x0a), 'bare-lf'],
    ['a bare CR last in the first window', (b) => b.write('\rx', 65535, 'latin1'), 'bare-cr'],
    ['a NUL first in the third window', (b) => (b[131072] = 0), 'nul'],
    ['a bare LF in the last bytes, after the whole blocks', (b) => (b[b.length - 3] = 0x0a), 'bare-lf'],
  ];
  for (const [name, change, found] of cases) {
    const data = Buffer.from(clean(), 'latin1');
    change(data);
    assert.equal(finishScan(scanChunk(initialScan, data)), found, name);
    assert.equal(finishScan(referenceScan(initialScan, data)), found, `${name} (reference)`);
  }
});

test('hasCleanLines: scanned, unless the buffer was recorded clean', () => {
  const cases: [string, string, boolean, boolean][] = [
    ['CRLF lines are clean', 'a\r\nb\r\n', false, true],
    ['a bare LF is not', 'a\nb\r\n', false, false],
    ['a final CR is not', 'a\r\nb\r', false, false],
    ['a NUL is not', 'a\0\r\n', false, false],
    ['a recorded buffer is taken at its word', 'a\nb', true, true],
  ];
  for (const [name, text, recorded, expected] of cases) {
    const buffer = Buffer.from(text, 'latin1');
    if (recorded) rememberCleanLines(buffer);
    assert.equal(hasCleanLines(buffer), expected, name);
    assert.equal(knownCleanLines(buffer), recorded, name);
  }
});
