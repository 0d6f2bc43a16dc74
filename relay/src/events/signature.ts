// The webhook's signature: `X-Mailfleet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
// `<t>.<body>` with the pool's events secret. The timestamp is inside the MAC so a receiver can
// refuse a replayed batch older than its tolerance (docs/events.md shows a verifier). Pure.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-mailfleet-signature';

export function signBatch(secret: Buffer, body: Buffer, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${mac(secret, body, unixSeconds)}`;
}

function mac(secret: Buffer, body: Buffer, t: number): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}

export type Verdict = { ok: true } | { ok: false; reason: 'malformed' | 'mismatch' | 'too_old' };

/** What a receiver does: parse the header, check the MAC, refuse a timestamp outside the tolerance. */
export function verifyBatch(
  secret: Buffer,
  body: Buffer,
  header: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): Verdict {
  const fields = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(fields.get('t'));
  const v1 = fields.get('v1') ?? '';
  if (!Number.isInteger(t) || !/^[0-9a-f]{64}$/.test(v1)) return { ok: false, reason: 'malformed' };
  if (!timingSafeEqual(Buffer.from(v1, 'hex'), Buffer.from(mac(secret, body, t), 'hex')))
    return { ok: false, reason: 'mismatch' };
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return { ok: false, reason: 'too_old' };
  return { ok: true };
}
