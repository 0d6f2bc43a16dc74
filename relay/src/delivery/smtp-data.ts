// The bytes of a message as they go out after DATA's 354 (RFC 5321 §4.5.2): a dot that starts a
// line is doubled, and the data ends with CRLF.CRLF. Pure. Byte for byte what nodemailer's
// DataStream makes of a message written to it in one piece (its property test pins that): a bare
// CR or LF becomes CRLF too (the intake refuses them, but DSNs and older spools are not the
// intake's), so a receiver that ends lines at a lone CR or LF sees no early end of data.
//
// DataStream is a Transform stream piped into the socket for every message, testing byte after
// byte; here the common message (CRLF lines, no line starting with a dot) goes out as the stored
// Buffer itself, with the terminator after it.

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

/** The message data and its terminator, two buffers to write one after the other. */
export function smtpData(message: Buffer): [Buffer, Buffer] {
  let parts: Buffer[] | undefined;
  /** Start of the part of `message` not yet in `parts`. */
  let from = 0;
  /** The byte before i; -1 at the start of the message (a dot there starts a line). */
  let prev = -1;
  for (let i = 0; i < message.length; i++) {
    const byte = message[i]!;
    let insert: Buffer | undefined;
    if (prev === CR) {
      // A bare CR becomes CRLF; a dot after it starts a line like any other.
      if (byte !== LF) insert = byte === DOT ? INSERT_LF_DOT : INSERT_LF;
    } else if (byte === LF) insert = INSERT_CR;
    else if (byte === DOT && (prev === LF || prev === -1)) insert = INSERT_DOT;
    if (insert) {
      parts ??= [];
      if (i > from) parts.push(message.subarray(from, i));
      parts.push(insert);
      from = i;
    }
    prev = byte;
  }
  const end = prev === LF ? END_AFTER_LF : prev === CR ? END_AFTER_CR : END;
  if (!parts) return [message, end];
  if (from < message.length) parts.push(message.subarray(from));
  return [Buffer.concat(parts), end];
}
