// Pure decisions for the SMTP intake hooks. Each returns { ok: true } or the reply to send; the
// hooks in smtp/ only gather the inputs and turn a reply into an SMTP error.
import { REPLIES, type PolicyResult } from '../errors.ts';
import type { AuthMode, SendingDomainConfig } from '../config/types.ts';
import { checkAddress } from '../security/address.ts';

export interface ConnectInput {
  draining: boolean;
  /** Sessions open now, this one included. */
  sessions: number;
  sessionsFromClient: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
}

export function connectPolicy(input: ConnectInput): PolicyResult {
  if (input.draining) return REPLIES.shuttingDown;
  if (input.sessions > input.maxConnections) return REPLIES.tooManyConnections;
  if (input.sessionsFromClient > input.maxConnectionsPerClient) return REPLIES.tooManyFromClient;
  return { ok: true };
}

export interface RelayPermissionInput {
  authenticatedUser: string | undefined;
  clientInAllowedNetworks: boolean;
  authMode: AuthMode;
  /** submission and smtps: AUTH is required whatever the client address (RFC 6409 §4.3). */
  listenerRequiresAuth: boolean;
}

/** Never an open relay: only an authenticated user or a client in allowedNetworks may relay. */
function relayPermission(input: RelayPermissionInput): PolicyResult {
  if (input.authenticatedUser !== undefined) return { ok: true };
  if (input.listenerRequiresAuth || input.authMode === 'Required') return REPLIES.authRequired;
  if (input.clientInAllowedNetworks) return { ok: true };
  return input.authMode === 'Disabled' ? REPLIES.relayDenied : REPLIES.authRequired;
}

export interface MailFromInput extends RelayPermissionInput {
  address: string;
  sendingDomains: readonly SendingDomainConfig[];
  /**
   * Sender domains the authenticated user may use (auth.userSenderDomains); undefined: any
   * sending domain of the pool.
   */
  userSenderDomains?: readonly string[] | undefined;
  /** False while free disk on the spool is below spool.minFreeBytes. */
  spoolHasSpace: boolean;
  draining: boolean;
}

export function mailFromPolicy(input: MailFromInput): PolicyResult {
  if (input.draining) return REPLIES.shuttingDown;
  // RFC 5321 §4.5.3.1.10 / RFC 1870: a full spool is a transient condition, say so before DATA.
  if (!input.spoolHasSpace) return REPLIES.diskFull;
  const permission = relayPermission(input);
  if (!('ok' in permission)) return permission;
  // The null reverse-path (bounces) carries no sending domain to check.
  if (input.address === '') return { ok: true };
  const checked = checkAddress(input.address);
  if (!checked.ok) return REPLIES.senderAddressRejected;
  const sending = input.sendingDomains.find((d) => d.domain === checked.domain);
  // A suspended domain's mail is accepted and held in the queue (the scheduler does not attempt
  // it until the suspension ends): a 5xx would make applications drop the mail for good.
  if (!sending) return REPLIES.senderDomainNotAllowed;
  if (
    input.authenticatedUser !== undefined &&
    input.userSenderDomains !== undefined &&
    !input.userSenderDomains.includes(checked.domain)
  )
    return REPLIES.senderNotOwned;
  return { ok: true };
}

export interface RcptToInput extends RelayPermissionInput {
  address: string;
  /** Recipients already accepted in this transaction. */
  accepted: number;
  maxRecipients: number;
}

export function rcptToPolicy(input: RcptToInput): PolicyResult {
  // Checked again at RCPT: a relay decision must not depend on MAIL having been refused.
  const permission = relayPermission(input);
  if (!('ok' in permission)) return permission;
  // RFC 5321 §4.5.3.1.8: 452 asks the client to send the rest in a later transaction.
  if (input.accepted >= input.maxRecipients) return REPLIES.tooManyRecipients;
  if (!checkAddress(input.address).ok) return REPLIES.recipientAddressRejected;
  return { ok: true };
}

/**
 * RateLimits with onExceed: reject, checked at RCPT TO once the recipient is otherwise accepted:
 * `limitedBy` names the limit that has no credit left (undefined: all admit).
 */
export function submissionLimitPolicy(input: { limitedBy: string | undefined }): PolicyResult {
  return input.limitedBy === undefined ? { ok: true } : REPLIES.rateLimited;
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}
