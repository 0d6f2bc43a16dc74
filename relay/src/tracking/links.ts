// Tracking links: a signed token carries everything the tracker needs (kind, sending domain,
// message, original URL), so no database resolves a link and the tracker can run stateless on any
// replica. The tracker redirects only to a URL whose HMAC verifies with the pool's tracking key:
// a token cannot be forged to send a reader anywhere else (never an open redirect). Pure.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type TrackingToken =
  | { kind: 'open'; domain: string; messageId: string }
  | { kind: 'click'; domain: string; messageId: string; url: string };

/** Path prefixes on the tracking host: /o/<token>.gif for the pixel, /c/<token> for a link. */
export const OPEN_PATH = '/o/';
export const CLICK_PATH = '/c/';
export { MIN_TRACKING_KEY_BYTES as MIN_KEY_BYTES } from '../../../contract/layout.ts';
/** 128 bits of HMAC-SHA256 (RFC 2104 §5 allows truncation to half the output or more). */
const MAC_BYTES = 16;
/** Domain separation: a MAC made for another purpose with the same key never verifies here. */
const CONTEXT = 'mailfleet-tracking-v1\0';

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(CONTEXT).update(payload).digest().subarray(0, MAC_BYTES);
}

/** http and https only: a javascript:, data: or file: URL is never signed nor followed. */
export function isTrackableUrl(url: string): boolean {
  if (!/^https?:\/\/[^\s/?#]/i.test(url)) return false;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export function encodeToken(key: Buffer, token: TrackingToken): string {
  const fields =
    token.kind === 'open'
      ? ['o', token.domain, token.messageId]
      : ['c', token.domain, token.messageId, token.url];
  const payload = Buffer.from(JSON.stringify(fields)).toString('base64url');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

/** The token's content if its MAC verifies with one of the keys (current, then previous); else undefined. */
export function decodeToken(keys: readonly Buffer[], text: string): TrackingToken | undefined {
  const dot = text.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = text.slice(0, dot);
  const given = Buffer.from(text.slice(dot + 1), 'base64url');
  if (given.length !== MAC_BYTES) return undefined;
  if (!keys.some((k) => timingSafeEqual(mac(k, payload), given))) return undefined;
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(fields) || !fields.every((f) => typeof f === 'string')) return undefined;
  const [kind, domain, messageId, url] = fields as string[];
  if (kind === 'o' && fields.length === 3) return { kind: 'open', domain: domain!, messageId: messageId! };
  // Checked again on the way out: even a validly signed token never redirects to a non-web URL.
  if (kind === 'c' && fields.length === 4 && isTrackableUrl(url!))
    return { kind: 'click', domain: domain!, messageId: messageId!, url: url! };
  return undefined;
}

export function clickUrl(key: Buffer, host: string, domain: string, messageId: string, url: string): string {
  return `https://${host}${CLICK_PATH}${encodeToken(key, { kind: 'click', domain, messageId, url })}`;
}

export function openUrl(key: Buffer, host: string, domain: string, messageId: string): string {
  return `https://${host}${OPEN_PATH}${encodeToken(key, { kind: 'open', domain, messageId })}.gif`;
}
