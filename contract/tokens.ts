// The management API's bearer tokens as both programs see them: the operator generates or checks
// the Secret it mounts, the relay reads the mounted files. Pure.
import type { AdminRole } from './config.ts';

/** Keys of the admin-tokens Secret, which are also the token roles and names in the relay config. */
export const ADMIN_TOKEN_ROLES: readonly AdminRole[] = ['read', 'admin'];

/**
 * Why a token (a token file's trimmed content) is unusable, if it is: too short to resist
 * guessing, or with characters an `Authorization: Bearer` header cannot carry (RFC 6750 b64token).
 */
export function adminTokenProblem(token: string): string | undefined {
  if (token.length < 16) return 'token shorter than 16 characters';
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) return 'token has characters a Bearer header cannot carry';
  return undefined;
}
