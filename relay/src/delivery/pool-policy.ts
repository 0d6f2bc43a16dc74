// The outbound pool's decisions, kept apart from its sockets (smtp-pool.ts): which connection a
// message goes to, what happens to a connection after a message, and which failures are worth
// another try on another connection. Pure.

/** The fields of a nodemailer SMTPConnection error that the decisions read. */
export interface SmtpFailure {
  message?: string;
  code?: string;
  responseCode?: number;
  command?: string;
}

/** What to do with the message at the head of the queue. */
export type Assignment = 'idle' | 'open' | 'wait';

export function assign(state: { idle: number; open: number; maxConnections: number }): Assignment {
  if (state.idle > 0) return 'idle';
  return state.open < state.maxConnections ? 'open' : 'wait';
}

/** What happens to a connection once a message over it is answered. */
export type AfterSend = 'reuse' | 'reset' | 'close';

export function afterSend(input: {
  failure: SmtpFailure | undefined;
  /** Messages sent over the connection, this one included. */
  sent: number;
  maxMessages: number;
  /** The pool is closing: no more messages over this connection. */
  closing: boolean;
}): AfterSend {
  if (input.closing || input.sent >= input.maxMessages) return 'close';
  const f = input.failure;
  if (!f) return 'reuse';
  // The server refused this message, the session itself is fine: RSET and keep it (421 is the
  // server closing the session, RFC 5321 §3.8).
  if ((f.code === 'EENVELOPE' || f.code === 'EMESSAGE') && f.responseCode !== 421) return 'reset';
  return 'close';
}

/** How a message's attempt over one connection ended without an SMTP answer to it. */
export interface FailedAttempt {
  /**
   * closed-before-greeting: a new connection the server closed without a word (nodemailer reports
   * it to connect's callback, not as an error event); connect: any other failure to set up the
   * session (refused, timeout, TLS, EHLO, AUTH); send: the transaction failed.
   */
  stage: 'closed-before-greeting' | 'connect' | 'send';
  error: SmtpFailure;
  /** The connection had sent messages before this one. */
  reused: boolean;
  /** Bytes of the message went out (DATA was accepted). */
  bodyStarted: boolean;
  /** Times this message went back to the queue already. */
  requeues: number;
}

export type FailureDecision = { action: 'requeue'; delayMs: number } | { action: 'fail'; error: SmtpFailure };

/** Bounds retries on fresh connections: a server that drops every connection is not hammered. */
export const MAX_REQUEUES = 5;
const REQUEUE_BASE_MS = 50;
const REQUEUE_MAX_MS = 2000;

/**
 * A message goes back to the queue (another connection, after a growing pause) when the failure
 * says nothing about the message: the server closed a new connection before its greeting, or
 * a reused connection turned out dead before any of the message was sent (a server closing an
 * idle session). Everything else is the message's outcome. As nodemailer's pool did.
 */
export function onFailure(attempt: FailedAttempt): FailureDecision {
  const retryable =
    attempt.stage === 'closed-before-greeting' ||
    (attempt.stage === 'send' && attempt.reused && !attempt.bodyStarted && isTransient(attempt.error));
  if (!retryable) return { action: 'fail', error: attempt.error };
  if (attempt.requeues >= MAX_REQUEUES) {
    return {
      action: 'fail',
      error: Object.assign(new Error('Reached maximum number of retries after connection was closed'), {
        code: 'ECONNECTION',
      }),
    };
  }
  return {
    action: 'requeue',
    delayMs: Math.min(REQUEUE_BASE_MS * 2 ** attempt.requeues, REQUEUE_MAX_MS),
  };
}

/** The connection ended rather than refused what was sent over it. */
export function isTransient(error: SmtpFailure): boolean {
  return (
    error.responseCode === 421 ||
    error.code === 'ECONNECTION' ||
    error.code === 'ESOCKET' ||
    error.code === 'ETIMEDOUT'
  );
}

/**
 * The envelope as sent: addresses exactly as the relay accepted them (checked by
 * security/address.ts), each recipient once, so every RCPT reply maps back to one recipient.
 */
export function envelopeOf(from: string, recipients: readonly string[]): { from: string; to: string[] } {
  const to = recipients.length === 1 ? [recipients[0]!] : [...new Set(recipients)];
  return { from, to };
}
