// Authentication of the internal handoff port. Pure: a secret, bytes and a clock in, a verdict out.
//
// Both directions are signed with the pool's shared secret (HMAC-SHA256): a request proves the
// sender belongs to the pool (public-listener policy does not apply to it, so nothing else may
// use the port), and the reply proves the acknowledgement came from a relay holding the secret,
// so a sender never deletes mail on the word of something that merely answered on the port.
// The request time bounds replays; a replayed batch is a duplicate, detected by message id.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Requests older or newer than this are refused (clock skew between nodes is far smaller). */
export const MAX_SKEW_MS = 5 * 60_000;
export const AUTH_HEADER = 'x-mailfleet-handoff';
export const REPLY_HEADER = 'x-mailfleet-handoff-reply';

export interface SignedRequest {
  method: string;
  path: string;
  /** Epoch ms of the request; also the nonce the reply is signed with. */
  time: number;
  body: Buffer;
}

function mac(secret: Buffer, text: string): Buffer {
  return createHmac('sha256', secret).update(text).digest();
}

function digest(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The value of AUTH_HEADER for a request. */
export function signRequest(secret: Buffer, r: SignedRequest): string {
  const sig = mac(secret, `request\n${r.method}\n${r.path}\n${r.time}\n${digest(r.body)}`).toString('hex');
  return `t=${r.time},sig=${sig}`;
}

export type Verdict = { ok: true; time: number } | { ok: false; reason: string };

export function verifyRequest(
  secret: Buffer,
  header: string | undefined,
  r: Omit<SignedRequest, 'time'>,
  now: number,
): Verdict {
  const m = /^t=(\d{1,16}),sig=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return { ok: false, reason: 'no signature' };
  const time = Number(m[1]);
  if (Math.abs(now - time) > MAX_SKEW_MS) return { ok: false, reason: 'signature time out of range' };
  const expected = mac(secret, `request\n${r.method}\n${r.path}\n${time}\n${digest(r.body)}`);
  if (!timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'))) return { ok: false, reason: 'bad signature' };
  return { ok: true, time };
}

/** The value of REPLY_HEADER: the reply body bound to the request it answers. */
export function signReply(secret: Buffer, requestTime: number, body: Buffer): string {
  return mac(secret, `reply\n${requestTime}\n${digest(body)}`).toString('hex');
}

export function verifyReply(
  secret: Buffer,
  requestTime: number,
  body: Buffer,
  header: string | undefined | null,
): boolean {
  if (!header || !/^[0-9a-f]{64}$/.test(header)) return false;
  return timingSafeEqual(
    Buffer.from(signReply(secret, requestTime, body), 'hex'),
    Buffer.from(header, 'hex'),
  );
}
