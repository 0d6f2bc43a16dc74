// DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463), relaxed/relaxed.
// Written here rather than taken from nodemailer (RSA only, no over-signing) or mailauth (no
// over-signing): over-signing From and the other identity headers stops a later hop from adding a
// second From that the signature would still cover.
import { createHash, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { fieldName, parseMessage, relaxedHeader } from './canonicalize.ts';
import { SigningInput, type SigningParts } from './signing-input.ts';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKey: KeyObject;
}

/**
 * Headers signed when present; each is also listed once more than it occurs (over-signed), so
 * adding another instance later breaks the signature.
 */
const signedHeaders = [
  'from',
  'sender',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'to',
  'cc',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'in-reply-to',
  'references',
  'list-id',
  'list-unsubscribe',
  'list-unsubscribe-post',
];
/** Over-signed even when absent: nobody may add them after signing. */
const alwaysOverSigned = new Set(['from', 'subject', 'date', 'to', 'cc', 'reply-to', 'message-id', 'sender']);

export function loadPrivateKey(pem: string | Buffer, algorithm: DkimAlgorithm): KeyObject {
  const key = createPrivateKey(pem);
  const expected = algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  if (key.asymmetricKeyType !== expected) {
    throw new Error(`DKIM key is ${key.asymmetricKeyType}, but the algorithm ${algorithm} needs ${expected}`);
  }
  return key;
}

function fold(header: string): string {
  // Fold the tag list at "; " so no line is overly long; b= is folded by the caller.
  return header.replace(/; /g, ';\r\n\t');
}

/**
 * The DKIM-Signature header field (with its trailing CRLF) for a message given as bytes, to be put
 * in front of it. `now` is the signing time in seconds (t=). Only the header block is parsed; the
 * body is hashed from the message's own bytes (body-hash.ts), never copied or made a string.
 */
export function signatureField(message: Buffer, key: DkimKey, now = Date.now() / 1000): Buffer {
  const input = new SigningInput();
  input.push(message);
  return fieldFor(input.end(), key, now);
}

/**
 * The same field for a message read in chunks (a big one, from the spool), one pass over them:
 * the header block is kept, the body only hashed. The key is chosen from the header block as soon
 * as it is complete; when `keyFor` gives none, the rest of the message is not read (undefined).
 */
export async function streamedSignatureField(
  chunks: AsyncIterable<Buffer>,
  keyFor: (header: Buffer) => DkimKey | undefined,
  now = Date.now() / 1000,
): Promise<{ field: Buffer; key: DkimKey } | undefined> {
  const input = new SigningInput();
  let key: DkimKey | undefined;
  for await (const chunk of chunks) {
    input.push(chunk);
    if (key) continue;
    const header = input.header();
    if (!header) continue;
    key = keyFor(header);
    if (!key) return undefined;
  }
  const parts = input.end();
  key ??= keyFor(parts.header);
  return key ? { field: fieldFor(parts, key, now), key } : undefined;
}

function fieldFor(parts: SigningParts, key: DkimKey, now: number): Buffer {
  const { fields } = parseMessage(parts.header.toString('latin1'));
  return Buffer.from(signatureFor(fields, parts.bodyHash, key, now), 'latin1');
}

/** The field for a header (its fields, unfolded) and a body hash (bh=). */
function signatureFor(fields: string[], bodyHash: string, key: DkimKey, now: number): string {
  // RFC 6376 §5.4.2: instances are taken from the bottom of the header up.
  const remaining = [...fields];
  const names: string[] = [];
  const hashed: string[] = [];
  for (const name of signedHeaders) {
    const present = fields.filter((f) => fieldName(f) === name).length;
    const times = present + (present > 0 || alwaysOverSigned.has(name) ? 1 : 0);
    for (let i = 0; i < times; i++) {
      names.push(name);
      const index = remaining.findLastIndex((f) => fieldName(f) === name);
      if (index >= 0) {
        hashed.push(`${relaxedHeader(remaining[index]!)}\r\n`);
        remaining.splice(index, 1);
      }
    }
  }
  const tags = [
    'v=1',
    `a=${key.algorithm}`,
    'c=relaxed/relaxed',
    `d=${key.domain}`,
    `s=${key.selector}`,
    `t=${Math.floor(now)}`,
    `h=${names.join(':')}`,
    `bh=${bodyHash}`,
    'b=',
  ];
  const unsigned = `DKIM-Signature: ${fold(tags.join('; '))}`;
  const data = hashed.join('') + relaxedHeader(unsigned);
  const signature =
    key.algorithm === 'rsa-sha256'
      ? cryptoSign('sha256', Buffer.from(data, 'latin1'), key.privateKey)
      : cryptoSign(null, createHash('sha256').update(data, 'latin1').digest(), key.privateKey);
  const b64 = signature.toString('base64').replace(/(.{72})(?=.)/g, '$1\r\n\t');
  return `${unsigned}${b64}\r\n`;
}

/** The message with its DKIM-Signature prepended, as one new Buffer (delivery sends the two apart). */
export function signMessage(message: Buffer, key: DkimKey, now = Date.now() / 1000): Buffer {
  return Buffer.concat([signatureField(message, key, now), message]);
}
