// Header fixes for mail submitted by clients (RFC 6409 §8): Message-ID and Date added when
// missing, and optionally the headers that identify the submitting client removed. Pure.
import { rfc5322Date } from './received.ts';

/** Headers naming the submitting client's software or address (Postfix's usual submission list). */
const CLIENT_HEADERS = ['received', 'x-originating-ip', 'x-mailer', 'user-agent', 'x-forwarded-for'];

export interface SubmissionHeaderOptions {
  /** Message-ID value, with angle brackets, used when the message has none. */
  messageId: string;
  date: Date;
  removeClientHeaders: boolean;
}

/** Splits the header section into fields (each with its folded continuation lines). */
function headerFields(header: string): string[] {
  const fields: string[] = [];
  for (const line of header.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0)
      fields[fields.length - 1] += `\r\n${line}`;
    else if (line !== '') fields.push(line);
  }
  return fields;
}

const nameOf = (field: string) =>
  field
    .slice(0, Math.max(0, field.indexOf(':')))
    .trim()
    .toLowerCase();

export function fixSubmissionHeaders(message: Buffer, options: SubmissionHeaderOptions): Buffer {
  const text = message.toString('latin1');
  const end = text.startsWith('\r\n') ? 0 : text.indexOf('\r\n\r\n');
  // No header/body separator: the whole message is header (RFC 5322 allows an absent body).
  const headerEnd = end < 0 ? text.length : end;
  const rest = end < 0 ? '\r\n' : text.slice(headerEnd + 2);
  let fields = headerFields(text.slice(0, headerEnd));
  if (options.removeClientHeaders) fields = fields.filter((f) => !CLIENT_HEADERS.includes(nameOf(f)));
  const names = new Set(fields.map(nameOf));
  if (!names.has('date')) fields.push(`Date: ${rfc5322Date(options.date)}`);
  if (!names.has('message-id')) fields.push(`Message-ID: ${options.messageId}`);
  const header = fields.map((f) => `${f}\r\n`).join('');
  return Buffer.from(header + rest, 'latin1');
}
