// SMTP smuggling defence (CVE-2023-51764/51765/51766). smtp-server ends DATA only at <CRLF>.<CRLF>
// but passes a lone CR or LF through; the next hop might end the message at "\n.\n" and run the
// rest as commands. Like Postfix's smtpd_forbid_bare_newline, the relay refuses any message that
// contains a CR not followed by LF, an LF not preceded by CR, or a NUL (which some MTAs strip,
// turning "\r\n\0.\r\n" into an end of data). The scanner is incremental across stream chunks.

export type Smuggling = 'bare-cr' | 'bare-lf' | 'nul';

/** State carried between chunks: whether the previous chunk ended in CR. */
export interface ScanState {
  pendingCR: boolean;
  found: Smuggling | null;
}

export const initialScan: ScanState = { pendingCR: false, found: null };

export function scanChunk(state: ScanState, chunk: Uint8Array): ScanState {
  if (state.found) return state;
  let pendingCR = state.pendingCR;
  for (let i = 0; i < chunk.length; i++) {
    const byte = chunk[i];
    if (pendingCR && byte !== 0x0a) return { pendingCR: false, found: 'bare-cr' };
    if (byte === 0x0a && !pendingCR) return { pendingCR: false, found: 'bare-lf' };
    if (byte === 0x00) return { pendingCR: false, found: 'nul' };
    pendingCR = byte === 0x0d;
  }
  return { pendingCR, found: null };
}

/** The verdict at the end of the data: a CR left pending is bare. */
export function finishScan(state: ScanState): Smuggling | null {
  if (state.found) return state.found;
  return state.pendingCR ? 'bare-cr' : null;
}
