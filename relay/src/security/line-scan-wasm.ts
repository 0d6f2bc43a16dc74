// A WebAssembly SIMD kernel for the bare-newline scanner: 16 bytes per step, where the Buffer
// indexOf scan made two native calls per line (one for CR, one for LF), the largest single cost of
// the relay's event loop at 100 KB and 1 MB once the message was scanned only once (figures:
// docs/benchmarks.md, Figures behind code choices). The module is written out below, byte by byte, so no toolchain or dependency is
// needed; its one function answers "which 16-byte block holds the first finding", and
// bare-newline.ts finds the exact byte and its kind with the indexOf scan from that block on.
//
// For each block v (and the CR mask of the block before it, carried in `prev`):
//   cr = v == '\r'; lf = v == '\n'; crBefore = (prev, cr) shifted one byte
//   bad = (lf xor crBefore) | (v == 0)
// lf without crBefore is a bare LF; crBefore without lf is a bare CR (found at the byte after it,
// as the scanner reports it); any NUL. So `bad` is set exactly where the scanner finds something.

const splat = (byte: number) => Array<number>(16).fill(byte);
const i8x16Eq = [0xfd, 0x23];
// prettier-ignore
const body = [
  // locals: i (i32), prev, v, cr (v128); params: 0 len, 1 carry
  0x02, 0x01, 0x7f, 0x03, 0x7b,
  0x20, 0x01, 0xfd, 0x0f, 0x21, 0x03, // prev = i8x16.splat(carry)
  0x03, 0x40, // loop
  0x20, 0x02, 0x20, 0x00, 0x4f, 0x04, 0x40, 0x41, 0x7f, 0x0f, 0x0b, // if i >= len: return -1
  0x20, 0x02, 0xfd, 0x00, 0x00, 0x00, 0x21, 0x04, // v = v128.load(i)
  0x20, 0x04, 0xfd, 0x0c, ...splat(0x0d), ...i8x16Eq, 0x21, 0x05, // cr = v == '\r'
  0x20, 0x03, 0x20, 0x05, 0xfd, 0x0d, 15, ...Array.from({ length: 15 }, (_, k) => 16 + k), // crBefore
  0x20, 0x04, 0xfd, 0x0c, ...splat(0x0a), ...i8x16Eq, // lf = v == '\n'
  0xfd, 0x51, // crBefore xor lf
  0x20, 0x04, 0xfd, 0x0c, ...splat(0x00), ...i8x16Eq, // v == NUL
  0xfd, 0x50, 0xfd, 0x53, // or; any_true
  0x04, 0x40, 0x20, 0x02, 0x0f, 0x0b, // if any: return i
  0x20, 0x05, 0x21, 0x03, // prev = cr
  0x20, 0x02, 0x41, 0x10, 0x6a, 0x21, 0x02, // i += 16
  0x0c, 0x00, // br loop
  0x0b, // end loop
  0x41, 0x7f, 0x0b, // -1 (not reached); end
];

/** LEB128 of a small unsigned number (section and body sizes). */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
const name = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];

/** The module: memory "mem" (one 64 KiB page), function "scan"(len, carry) -> first bad block or -1. */
// prettier-ignore
const MODULE_BYTES = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]), // type (i32, i32) -> i32
  ...section(3, [0x01, 0x00]), // one function of that type
  ...section(5, [0x01, 0x00, 0x01]), // one memory, at least one page
  ...section(7, [0x02, ...name('mem'), 0x02, 0x00, ...name('scan'), 0x00, 0x00]),
  ...section(10, [0x01, ...uleb(body.length), ...body]),
]);

/** Bytes the kernel scans per call: its memory. */
export const WINDOW = 65536;

export interface BlockScanner {
  /** The kernel's memory: the bytes to scan are copied here first. */
  memory: Uint8Array;
  /**
   * Offset of the first 16-byte block of memory[0, length) holding a bare CR, bare LF or NUL
   * (`length` a multiple of 16), given whether the byte before the window was a CR; -1 if none.
   */
  scan(length: number, crBefore: boolean): number;
}

let instance: BlockScanner | null | undefined;

/** The part of the WebAssembly global used here (the project's TypeScript libs do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => {
    exports: { mem: { buffer: ArrayBuffer }; scan: (length: number, carry: number) => number };
  };
}

/** The kernel, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function blockScanner(): BlockScanner | null {
  if (instance !== undefined) return instance;
  try {
    const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
    const { exports } = new wasm.Instance(new wasm.Module(MODULE_BYTES));
    const memory = new Uint8Array(exports.mem.buffer);
    instance = { memory, scan: (length, crBefore) => exports.scan(length, crBefore ? -1 : 0) };
  } catch {
    instance = null;
  }
  return instance;
}
