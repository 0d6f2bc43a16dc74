// Who may use the management port. /metrics, /healthz and /readyz are open (Prometheus and the
// kubelet call them without credentials and they show no envelope data); everything under /api and
// /drain needs a bearer token whose role covers the route. Pure: the caller passes the configured
// token digests, the request's Authorization header and the client's failure bucket.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminRole } from '../../../contract/config.ts';

/** What a route needs: nothing, a read token, or an admin token. */
export type Access = 'public' | AdminRole;

/** A configured token as the relay keeps it: the SHA-256 of the secret, never the secret. */
export interface AdminToken {
  name: string;
  role: AdminRole;
  digest: Buffer;
}

export interface Principal {
  name: string;
  role: AdminRole;
}

export type AuthDecision =
  | { kind: 'allow'; principal?: Principal }
  /** 401: no usable token; counts as a failed attempt of the client address. */
  | { kind: 'unauthorized'; reason: 'missing' | 'invalid' }
  /** 403: a valid token whose role does not cover the route. */
  | { kind: 'forbidden'; principal: Principal }
  /** 429: too many failed attempts from this address; the token is not even looked at. */
  | { kind: 'throttled'; retryAfterSeconds: number };

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The token that matches `presented`, compared in constant time: both sides are SHA-256 digests
 * (equal length whatever was sent) and every configured token is compared, match or not, so
 * neither the length nor the position of a match shows in the response time.
 */
export function matchToken(tokens: readonly AdminToken[], presented: string): AdminToken | undefined {
  const digest = tokenDigest(presented);
  let found: AdminToken | undefined;
  for (const token of tokens) if (timingSafeEqual(token.digest, digest) && !found) found = token;
  return found;
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750 §2.1). */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '');
  return match?.[1];
}

/** The header the token may also come in: through the Kubernetes API server's pod proxy the
 * `Authorization` header is the user's own credential, which the API server removes after checking. */
const TOKEN_HEADER = 'x-mailfleet-token';

/**
 * The Authorization value to judge: the `Authorization` header if sent, else the token of
 * `X-Mailfleet-Token` as a Bearer credential. Repeated headers are never merged into a token.
 */
export function presentedAuthorization(
  headers: Record<string, string | string[] | undefined>,
): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') return authorization;
  const token = headers[TOKEN_HEADER];
  if (Array.isArray(token)) return 'Bearer';
  return token === undefined ? undefined : `Bearer ${token}`;
}

const covers: Record<AdminRole, readonly Access[]> = {
  read: ['public', 'read'],
  admin: ['public', 'read', 'admin'],
};

export type AuthInput = {
  required: Access;
  authorization: string | undefined;
  tokens: readonly AdminToken[];
  /** Seconds until the client address may try again; 0 when its failure bucket is not empty. */
  throttledForSeconds: number;
};

export function decideAccess(input: AuthInput): AuthDecision {
  if (input.required === 'public') return { kind: 'allow' };
  if (input.throttledForSeconds > 0)
    return { kind: 'throttled', retryAfterSeconds: input.throttledForSeconds };
  const presented = bearerToken(input.authorization);
  if (presented === undefined)
    return { kind: 'unauthorized', reason: input.authorization === undefined ? 'missing' : 'invalid' };
  const token = matchToken(input.tokens, presented);
  if (!token) return { kind: 'unauthorized', reason: 'invalid' };
  const principal = { name: token.name, role: token.role };
  return covers[token.role].includes(input.required)
    ? { kind: 'allow', principal }
    : { kind: 'forbidden', principal };
}

/** A client address's failed attempts: a token bucket of `burst`, one token back per `refillMs`. */
export interface FailureBucket {
  tokens: number;
  at: number;
}

export interface BucketPolicy {
  burst: number;
  refillMs: number;
}

function refilled(bucket: FailureBucket | undefined, now: number, policy: BucketPolicy): FailureBucket {
  if (!bucket) return { tokens: policy.burst, at: now };
  const gained = Math.max(0, now - bucket.at) / policy.refillMs;
  return { tokens: Math.min(policy.burst, bucket.tokens + gained), at: now };
}

/** Seconds until the address may try again (0: it may now). */
export function throttledFor(bucket: FailureBucket | undefined, now: number, policy: BucketPolicy): number {
  const current = refilled(bucket, now, policy);
  return current.tokens >= 1 ? 0 : Math.ceil(Math.round((1 - current.tokens) * policy.refillMs) / 1000);
}

/** The bucket after one more failed attempt. */
export function afterFailedAttempt(
  bucket: FailureBucket | undefined,
  now: number,
  policy: BucketPolicy,
): FailureBucket {
  const current = refilled(bucket, now, policy);
  return { tokens: Math.max(0, current.tokens - 1), at: now };
}

/** True when the bucket has refilled completely and can be forgotten. */
export function isFull(bucket: FailureBucket, now: number, policy: BucketPolicy): boolean {
  return refilled(bucket, now, policy).tokens >= policy.burst;
}
