// The bytes of a message as they go out after DATA's 354 (RFC 5321 §4.5.2): a dot that starts a
// line is doubled, and the data ends with CRLF.CRLF. Pure. Byte for byte what nodemailer's
// DataStream makes of a message written to it in one piece (its property test pins that): a bare
// CR or LF becomes CRLF too (the intake refuses them, but DSNs and older spools are not the
// intake's), so a receiver that ends lines at a lone CR or LF sees no early end of data.
//
// DataStream is a Transform stream piped into the socket for every message, testing byte after
// byte; here the common message (CRLF lines, no line starting with a dot) goes out as the stored
// Buffer itself, with the terminator after it, found by native scans (the bare-newline scanner and
// indexOf); only a chunk with a bare CR or LF takes the byte-by-byte path. DotStuffer does the same
// chunk by chunk, for a big message streamed from the spool to the socket.
import { hasCleanLines } from '../security/bare-newline.ts';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');
const END_AFTER_LF = Buffer.from('.\r\n');
const END_AFTER_CR = Buffer.from('\n.\r\n');
const END = Buffer.from('\r\n.\r\n');

const LF_DOT = Buffer.from('\n.');

/**
 * The message data and its terminator, as buffers to write one after the other: the message's own
 * bytes in pieces between the inserted dots or line ends, never copied into one new Buffer (a
 * megabyte per big message with a line that starts with a dot). The message may come in parts (a
 * DKIM-Signature field, then the stored message; or the chunks of a file): the data is the same as
 * for the parts joined, whatever the parts split (a CRLF, a CRLF and the dot after it).
 */
export function smtpData(message: Buffer | readonly Buffer[]): Buffer[] {
  const parts = Buffer.isBuffer(message) ? [message] : message;
  const stuffer = new DotStuffer();
  const out: Buffer[] = [];
  for (const part of parts) stuffer.push(part, out);
  stuffer.end(out);
  return out;
}

/**
 * The same data made chunk by chunk, for a message read from the spool as it is sent: what
 * `push` and `end` add is, joined, exactly smtpData of the chunks joined, wherever the chunks
 * split (a CRLF, a CRLF and the dot after it, a bare CR and what follows it). It keeps only the
 * last byte seen between calls.
 */
export class DotStuffer {
  /** The last byte so far; -1 at the start of the message (a dot there starts a line). */
  private prev = -1;

  /** Adds the data for `chunk` to `out` (pieces of `chunk` and the bytes inserted between them). */
  push(chunk: Buffer, out: Buffer[]): void {
    if (chunk.length === 0) return;
    // The common case: every line ends in CRLF (no bare CR or LF, which the intake refuses), so
    // only dots at the start of a line need doubling. A chunk the intake's guard scanned is known
    // clean without a second scan; any other (recovered, handed over, a DSN, rewritten by
    // tracking, read from a file) is scanned natively. A bare CR or LF, or a NUL, takes the
    // byte-by-byte path; so does a chunk after one that ended in CR (its LF may come first). A
    // clean chunk cannot end in the CR of a CRLF or start with its LF.
    if (this.prev !== CR && hasCleanLines(chunk)) this.crlf(chunk, out);
    else this.normalize(chunk, out);
    this.prev = chunk[chunk.length - 1]!;
  }

  /** Adds the terminator: CRLF.CRLF, or what completes it after the message's own line end. */
  end(out: Buffer[]): void {
    out.push(this.prev === LF ? END_AFTER_LF : this.prev === CR ? END_AFTER_CR : END);
  }

  /** A chunk without bare CR or LF: its dots at line starts doubled, found with indexOf. */
  private crlf(chunk: Buffer, out: Buffer[]): void {
    let from = 0;
    if (chunk[0] === DOT && (this.prev === LF || this.prev === -1)) out.push(INSERT_DOT);
    for (let at = chunk.indexOf(LF_DOT); at !== -1; at = chunk.indexOf(LF_DOT, at + 1)) {
      out.push(chunk.subarray(from, at + 1), INSERT_DOT);
      from = at + 1;
    }
    out.push(from === 0 ? chunk : chunk.subarray(from));
  }

  /** Any chunk, byte by byte: bare CR and LF become CRLF, dots at line starts are doubled. */
  private normalize(chunk: Buffer, out: Buffer[]): void {
    let prev = this.prev;
    /** Start of the part of `chunk` not yet in `out`. */
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      let insert: Buffer | undefined;
      if (prev === CR) {
        // A bare CR becomes CRLF; a dot after it starts a line like any other.
        if (byte !== LF) insert = byte === DOT ? INSERT_LF_DOT : INSERT_LF;
      } else if (byte === LF) insert = INSERT_CR;
      else if (byte === DOT && (prev === LF || prev === -1)) insert = INSERT_DOT;
      if (insert) {
        if (i > from) out.push(chunk.subarray(from, i));
        out.push(insert);
        from = i;
      }
      prev = byte;
    }
    if (from < chunk.length) out.push(from === 0 ? chunk : chunk.subarray(from));
  }
}
