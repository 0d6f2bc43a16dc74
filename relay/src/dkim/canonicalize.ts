// DKIM relaxed canonicalization (RFC 6376 §3.4.2 and §3.4.4), on latin1 ("binary") strings so
// that every byte of the message maps to one character and back.

/** Relaxed header canonicalization of one header field (name: value, possibly folded). */
export function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).trim().toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r\n(?=[ \t])/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
  return `${name}:${value}`;
}

/**
 * Relaxed body canonicalization: the definition the signer's body hash (body-hash.ts, which works
 * on chunks of bytes) is held to by its tests. An empty body canonicalizes to the empty string. Whole-body
 * native regular expressions instead of a split into lines: whitespace at the end of a line goes,
 * other runs of spaces and tabs become one space, empty lines at the end go, a last line gets its
 * CRLF.
 */
export function relaxedBody(body: string): string {
  const canonical = body
    .replace(/[ \t]+(?=\r\n|$)/g, '')
    .replace(/[ \t]+/g, ' ')
    .replace(/(?:\r\n)+$/, '');
  return canonical.length === 0 ? '' : `${canonical}\r\n`;
}

export interface ParsedMessage {
  /** Header fields in order, each with its folding and without the final CRLF. */
  fields: string[];
  body: string;
}

/** Splits a message (latin1 string) into header fields and body at the first empty line. */
export function parseMessage(message: string): ParsedMessage {
  let end = message.indexOf('\r\n\r\n');
  let headerBlock: string;
  let body: string;
  if (end === -1) {
    headerBlock = message.endsWith('\r\n') ? message.slice(0, -2) : message;
    body = '';
  } else {
    headerBlock = message.slice(0, end);
    body = message.slice(end + 4);
  }
  end = 0;
  const fields: string[] = [];
  for (const line of headerBlock.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1] += `\r\n${line}`;
    } else if (line.length > 0) {
      fields.push(line);
    }
  }
  return { fields, body };
}

export function fieldName(field: string): string {
  return field.slice(0, field.indexOf(':')).trim().toLowerCase();
}
