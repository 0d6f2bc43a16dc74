// Pure decisions for the SMTP intake hooks. Each returns { ok: true } or the reply to send; the
// hooks in smtp/ only gather the inputs and turn a reply into an SMTP error.
import { REPLIES, type PolicyResult } from '../errors.ts';
import type { AuthMode, SendingDomainConfig } from '../config/types.ts';

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

export interface MailFromInput {
  address: string;
  authenticatedUser: string | undefined;
  clientInAllowedNetworks: boolean;
  authMode: AuthMode;
  sendingDomains: readonly SendingDomainConfig[];
  /** False while free disk on the spool is below spool.minFreeBytes. */
  spoolHasSpace: boolean;
  draining: boolean;
}

export function mailFromPolicy(input: MailFromInput): PolicyResult {
  if (input.draining) return REPLIES.shuttingDown;
  // RFC 5321 §4.5.3.1.10 / RFC 1870: a full spool is a transient condition, say so before DATA.
  if (!input.spoolHasSpace) return REPLIES.diskFull;
  const mayRelay =
    input.authenticatedUser !== undefined || (input.authMode !== 'Required' && input.clientInAllowedNetworks);
  if (!mayRelay) return input.authMode === 'Disabled' ? REPLIES.relayDenied : REPLIES.authRequired;
  // The null reverse-path (bounces) carries no sending domain to check.
  if (input.address === '') return { ok: true };
  const domain = domainOf(input.address);
  const sending = input.sendingDomains.find((d) => d.domain === domain);
  if (!sending) return REPLIES.senderDomainNotAllowed;
  if (sending.suspended) return REPLIES.senderDomainSuspended;
  return { ok: true };
}

export interface RcptToInput {
  address: string;
  /** Recipients already accepted in this transaction. */
  accepted: number;
  maxRecipients: number;
}

export function rcptToPolicy(input: RcptToInput): PolicyResult {
  // RFC 5321 §4.5.3.1.8: 452 asks the client to send the rest in a later transaction.
  if (input.accepted >= input.maxRecipients) return REPLIES.tooManyRecipients;
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(input.address)) return REPLIES.badRecipient;
  return { ok: true };
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}
