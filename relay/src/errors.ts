// The relay's one error catalogue. Every SMTP reply the relay makes itself comes from REPLIES, so
// a reply code is chosen in exactly one place and metrics can count rejections by a stable code.

export interface SmtpReply {
  code: number;
  enhanced: string;
  message: string;
}

export type PolicyResult = { ok: true } | SmtpReply;

export const REPLIES = {
  // RFC 5321 §3.8: 421 closes the session; used while draining so clients retry another relay.
  shuttingDown: { code: 421, enhanced: '4.3.2', message: 'Service shutting down, try another relay' },
  // The intake switch is closed (config intake.open: false, a pool being deleted): the session
  // closes and the client tries another relay; at the end of DATA nothing was queued.
  intakeClosed: {
    code: 421,
    enhanced: '4.3.2',
    message: 'Intake closed, not accepting mail: try another relay',
  },
  intakeClosedInData: {
    code: 451,
    enhanced: '4.3.2',
    message: 'Intake closed, message not queued: try another relay',
  },
  tooManyConnections: { code: 421, enhanced: '4.7.0', message: 'Too many connections, try again later' },
  tooManyFromClient: { code: 421, enhanced: '4.7.0', message: 'Too many connections from your address' },
  // RFC 3463 4.3.0: the spool write or fsync failed; nothing was queued, the client keeps the message.
  spoolWriteFailed: { code: 451, enhanced: '4.3.0', message: 'Temporary local problem, message not queued' },
  // RFC 3463 4.3.1: mail system full.
  diskFull: { code: 452, enhanced: '4.3.1', message: 'Insufficient system storage' },
  tooManyRecipients: { code: 452, enhanced: '4.5.3', message: 'Too many recipients' },
  // A RateLimit with onExceed: reject. 4xx so the client keeps the message and retries later.
  rateLimited: { code: 451, enhanced: '4.7.0', message: 'Rate limit exceeded, try again later' },
  authRequired: { code: 530, enhanced: '5.7.0', message: 'Authentication required' },
  authFailed: { code: 535, enhanced: '5.7.8', message: 'Authentication credentials invalid' },
  // Never an open relay: refused at MAIL/RCPT time, so no bounce ever goes to a forged sender.
  relayDenied: { code: 550, enhanced: '5.7.1', message: 'Relay access denied' },
  // Address tricks (percent hack, bang path, quoted routing, source route, no domain).
  senderAddressRejected: {
    code: 553,
    enhanced: '5.7.1',
    message: 'Sender address rejected: routing syntax or no domain',
  },
  recipientAddressRejected: {
    code: 550,
    enhanced: '5.7.1',
    message: 'Recipient address rejected: routing syntax or no domain',
  },
  // Postfix reject_sender_login_mismatch: the user may not send as this domain.
  senderNotOwned: { code: 553, enhanced: '5.7.1', message: 'Sender address rejected: not owned by user' },
  // Anvil lockout after too many AUTH failures (RFC 4954 §6: 454 is a temporary AUTH failure).
  authLocked: {
    code: 454,
    enhanced: '4.7.0',
    message: 'Too many authentication failures, try again later',
  },
  // SMTP smuggling (CVE-2023-51764): as Postfix's smtpd_forbid_bare_newline, then disconnect.
  bareLf: { code: 521, enhanced: '5.5.2', message: 'Error: bare <LF> received' },
  bareCr: { code: 521, enhanced: '5.5.2', message: 'Error: bare <CR> received' },
  nulByte: { code: 521, enhanced: '5.5.2', message: 'Error: NUL character received' },
  // Slowloris: the client sends slower than limits.minDataRate.
  dataRateTooLow: { code: 421, enhanced: '4.4.2', message: 'Timeout: data rate too low' },
  senderDomainNotAllowed: {
    code: 550,
    enhanced: '5.7.1',
    message: 'Sender domain is not a sending domain of this relay',
  },
  // The recipient is on the pool's suppression list (suppression/). 5.1.1: the mailbox hard-bounced
  // before; 5.7.1: delivery not authorised (a complaint, or an operator's entry). Permanent, so the
  // application stops retrying and can read the reason in the text.
  suppressedHardBounce: {
    code: 550,
    enhanced: '5.1.1',
    message: 'Recipient suppressed: an earlier message to it hard-bounced',
  },
  suppressedComplaint: {
    code: 550,
    enhanced: '5.7.1',
    message: 'Recipient suppressed: the recipient reported mail from this sender as spam',
  },
  suppressedManual: {
    code: 550,
    enhanced: '5.7.1',
    message: 'Recipient suppressed: on the suppression list of this relay pool',
  },
  badRecipient: { code: 501, enhanced: '5.1.3', message: 'Bad recipient address syntax' },
  messageTooBig: { code: 552, enhanced: '5.3.4', message: 'Message size exceeds fixed maximum message size' },
  // The return-path listener is no mailbox: only signed VERP addresses of this pool exist there.
  notReturnPath: {
    code: 550,
    enhanced: '5.1.1',
    message: 'No such mailbox here (return-path addresses only)',
  },
  // A report that could not be read is not lost: 451 so the sending MTA tries again.
  feedbackNotRecorded: { code: 451, enhanced: '4.3.0', message: 'Report not recorded, try again later' },
} as const satisfies Record<string, SmtpReply>;

/** An Error carrying an SMTP reply; smtp-server reads responseCode to build the reply line. */
export class SmtpReplyError extends Error {
  readonly responseCode: number;
  readonly reply: SmtpReply;
  constructor(reply: SmtpReply) {
    super(`${reply.enhanced} ${reply.message}`);
    this.responseCode = reply.code;
    this.reply = reply;
  }
}

export function isReply(result: PolicyResult): result is SmtpReply {
  return !('ok' in result);
}

/** Internal (non-SMTP) failures, with stable codes for logs and metrics. */
export type RelayErrorCode =
  | 'SPOOL_WRITE'
  | 'SPOOL_CORRUPT'
  | 'CONFIG_INVALID'
  | 'DNS_FAILURE'
  | 'DELIVERY_CONNECTION'
  | 'HANDOFF_FAILED';

export class RelayError extends Error {
  readonly code: RelayErrorCode;
  constructor(code: RelayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
