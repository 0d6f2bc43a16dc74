// The operator's error catalogue: every failure a reconcile can meet has a stable code, which the
// error policy (controller/policy.ts) turns into a requeue delay and a metric label.
export const errorCodes = {
  API_CONFLICT: 'the object changed under us (409); retry with fresh caches',
  API_NOT_FOUND: 'the object is gone (404)',
  API_FORBIDDEN: 'RBAC does not allow the request (403)',
  API_INVALID: 'the API server rejected the object (422)',
  API_THROTTLED: 'the API server asked us to slow down (429)',
  API_UNAVAILABLE: 'the API server failed or is unreachable (5xx, connection error)',
  NOT_OWNED: 'an object of the name a pool needs exists and is not controlled by that pool',
  LEADERSHIP_LOST: 'this process no longer leads: the request was not sent or was cut off',
  KEY_GENERATION: 'generating a DKIM key or password failed',
  INTERNAL: 'a bug: an unexpected exception',
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class OperatorError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  constructor(code: ErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'OperatorError';
    this.code = code;
    this.status = status;
  }
}

export function codeForStatus(status: number): ErrorCode {
  if (status === 409) return 'API_CONFLICT';
  if (status === 404) return 'API_NOT_FOUND';
  if (status === 403 || status === 401) return 'API_FORBIDDEN';
  if (status === 422 || status === 400) return 'API_INVALID';
  if (status === 429) return 'API_THROTTLED';
  return 'API_UNAVAILABLE';
}

export function errorCode(error: unknown): ErrorCode {
  return error instanceof OperatorError ? error.code : 'INTERNAL';
}
