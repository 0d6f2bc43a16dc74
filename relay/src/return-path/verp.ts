// Signed VERP (variable envelope return path): each recipient's copy of a message leaves with an
// envelope sender of its own on the sending domain's return-path domain, so a bounce or complaint
// that comes back days later names the message and recipient it is about. The address carries an
// HMAC under the pool's key instead of an id into a table: any relay of the pool can verify it,
// nothing is stored, and a forged or altered address is refused at RCPT. Pure.
//
//   bnc-<mac>-<queue id>-<recipient local part>=<recipient domain>@<return-path domain>
//
// The recipient is spelled out as in classic VERP (qmail, Postfix's `-V`), so a human reading a
// bounce sees who it is about. Mailbox providers sometimes lower-case the address they answer to,
// so the MAC is computed over the lower-cased fields and the queue id (upper-case base 36) is
// restored on decode.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface VerpFields {
  /** The sending domain the message was sent for (the original envelope sender's domain). */
  sendingDomain: string;
  /** Spool queue id of the original message. */
  queueId: string;
  recipient: string;
}

const PREFIX = 'bnc-';
/** Base32 (RFC 4648 alphabet, lower case): survives lower-casing, no padding needed for 8 bytes. */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** 64-bit MAC: a forger needs ~2^63 online RCPT attempts, each refused and logged. */
const MAC_BYTES = 8;
/** RFC 5322 atext plus dots: a local part that needs no quoting in MAIL FROM. */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const QUEUE_ID = /^[0-9A-Za-z]+$/;
const ADDRESS = /^bnc-([a-z2-7]{13})-([0-9a-z]+)-(.+)=([^=@]+)$/i;

function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

function mac(key: Buffer, f: VerpFields): string {
  const input = `mailfleet-verp-v1\n${f.sendingDomain}\n${f.queueId}\n${f.recipient}`.toLowerCase();
  return base32(createHmac('sha256', key).update(input).digest().subarray(0, MAC_BYTES));
}

/**
 * The envelope sender for one recipient's copy, or undefined when the recipient cannot be spelled
 * in a dot-atom local part (a quoted local part): that copy keeps the original envelope sender.
 */
export function verpAddress(key: Buffer, returnPathDomain: string, f: VerpFields): string | undefined {
  const at = f.recipient.lastIndexOf('@');
  if (at <= 0 || !QUEUE_ID.test(f.queueId)) return undefined;
  const local = f.recipient.slice(0, at);
  const domain = f.recipient.slice(at + 1);
  if (!DOT_ATOM.test(local) || !/^[A-Za-z0-9.-]+$/.test(domain)) return undefined;
  const token = `${PREFIX}${mac(key, f)}-${f.queueId.toLowerCase()}-${local}=${domain}`;
  return `${token}@${returnPathDomain}`.toLowerCase();
}

export type VerpVerdict =
  { ok: true; fields: VerpFields } | { ok: false; reason: 'not-verp' | 'unknown-domain' | 'bad-signature' };

/**
 * Verifies a return-path address. `sendingDomainsOf` names the sending domains that use the
 * address's domain as their return path (usually one): the MAC binds the sending domain, so the
 * one it verifies under is the message's.
 */
export function verifyVerp(
  key: Buffer,
  address: string,
  sendingDomainsOf: (returnPathDomain: string) => readonly string[],
): VerpVerdict {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const match = at > 0 ? ADDRESS.exec(local) : null;
  if (!match) return { ok: false, reason: 'not-verp' };
  const candidates = sendingDomainsOf(address.slice(at + 1).toLowerCase());
  if (candidates.length === 0) return { ok: false, reason: 'unknown-domain' };
  const [, given, queueId, rcptLocal, rcptDomain] = match;
  for (const sendingDomain of candidates) {
    const fields = {
      sendingDomain,
      queueId: queueId!.toUpperCase(),
      recipient: `${rcptLocal}@${rcptDomain}`.toLowerCase(),
    };
    const expected = Buffer.from(mac(key, fields));
    const actual = Buffer.from(given!.toLowerCase());
    if (expected.length === actual.length && timingSafeEqual(expected, actual)) return { ok: true, fields };
  }
  return { ok: false, reason: 'bad-signature' };
}
