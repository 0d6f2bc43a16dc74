// SMTP smuggling defence (CVE-2023-51764/51765/51766). smtp-server ends DATA only at <CRLF>.<CRLF>
// but passes a lone CR or LF through; the next hop might end the message at "\n.\n" and run the
// rest as commands. Like Postfix's smtpd_forbid_bare_newline, the relay refuses any message that
// contains a CR not followed by LF, an LF not preceded by CR, or a NUL (which some MTAs strip,
// turning "\r\n\0.\r\n" into an end of data). The scanner is incremental across stream chunks.

import { blockScanner, WINDOW } from './line-scan-wasm.ts';

export type Smuggling = 'bare-cr' | 'bare-lf' | 'nul';

/** State carried between chunks: whether the previous chunk ended in CR. */
export interface ScanState {
  pendingCR: boolean;
  found: Smuggling | null;
}

export const initialScan: ScanState = { pendingCR: false, found: null };

const CR = 0x0d;
const LF = 0x0a;

/**
 * The first finding in `chunk`, in byte order (a bare CR is found at the byte after it, so a CR
 * followed by NUL is bare-cr). Whole 16-byte blocks go through the WebAssembly SIMD kernel
 * (line-scan-wasm.ts), a window of 64 KiB per call; from the first block it flags, and for the
 * last bytes, the indexOf scan below says exactly what and where.
 */
export function scanChunk(state: ScanState, chunk: Uint8Array): ScanState {
  if (state.found) return state;
  const len = chunk.length;
  if (len === 0) return state;
  const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, len);
  const kernel = blockScanner();
  if (!kernel) return scanFrom(state, bytes);
  let crBefore = state.pendingCR;
  for (let start = 0; ;) {
    const blocks = Math.min(WINDOW, (len - start) & ~15);
    if (blocks === 0) return scanFrom({ pendingCR: crBefore, found: null }, bytes.subarray(start));
    kernel.memory.set(bytes.subarray(start, start + blocks));
    const flagged = kernel.scan(blocks, crBefore);
    if (flagged >= 0) {
      const at = start + flagged;
      return scanFrom(
        { pendingCR: at > 0 ? bytes[at - 1] === CR : crBefore, found: null },
        bytes.subarray(at),
      );
    }
    start += blocks;
    crBefore = bytes[start - 1] === CR;
  }
}

/** scanChunk with Buffer indexOf for NUL, CR and LF: about two native calls per line. */
function scanFrom(state: ScanState, bytes: Buffer): ScanState {
  const len = bytes.length;
  if (len === 0) return state;
  if (state.pendingCR && bytes[0] !== LF) return { pendingCR: false, found: 'bare-cr' };
  const nul = bytes.indexOf(0);
  /** Where the first bare CR or LF is found (len: none), and which. */
  let at = len;
  let found: Smuggling | null = null;
  let pendingCR = false;
  let i = state.pendingCR ? 1 : 0;
  for (;;) {
    const cr = bytes.indexOf(CR, i);
    const lf = bytes.indexOf(LF, i);
    if (lf !== -1 && (cr === -1 || lf < cr)) {
      [at, found] = [lf, 'bare-lf'];
      break;
    }
    if (cr === -1) break;
    if (cr === len - 1) {
      pendingCR = true;
      break;
    }
    if (lf !== cr + 1) {
      [at, found] = [cr + 1, 'bare-cr'];
      break;
    }
    i = lf + 1;
  }
  if (nul !== -1 && nul < at) return { pendingCR: false, found: 'nul' };
  if (found) return { pendingCR: false, found };
  return { pendingCR, found: null };
}

/** The verdict at the end of the data: a CR left pending is bare. */
export function finishScan(state: ScanState): Smuggling | null {
  if (state.found) return state.found;
  return state.pendingCR ? 'bare-cr' : null;
}

/**
 * Buffers known to have CRLF line ends only and no NUL, never modified afterwards: a message the
 * guard scanned at intake is not scanned again at delivery. A WeakSet, like crc.ts's CRCs: a
 * Buffer that is dropped is forgotten with it.
 */
const cleanLines = new WeakSet<Buffer>();

/** Records that `buffer` has CRLF line ends only and no NUL (its bytes were scanned already). */
export function rememberCleanLines(buffer: Buffer): void {
  cleanLines.add(buffer);
}

/** Whether `buffer` was recorded as having CRLF line ends only and no NUL (no scan). */
export function knownCleanLines(buffer: Buffer): boolean {
  return cleanLines.has(buffer);
}

/** Whether `buffer` has CRLF line ends only and no NUL: recorded, or scanned now. */
export function hasCleanLines(buffer: Buffer): boolean {
  return cleanLines.has(buffer) || finishScan(scanChunk(initialScan, buffer)) === null;
}
