// RFC 3464 delivery status notifications: hard bounces and expiries (action failed), mail still
// being retried after a while (delayed), and mail handed to a next hop that does not take DSN
// parameters (relayed, RFC 3461 §6.2.3). Pure: returns the message bytes; the caller queues them
// from the null sender (RFC 5321 §4.5.5). The client's RFC 3461 parameters shape it: RET=FULL
// returns the whole message (failures only, §4.3), ENVID and ORCPT are echoed.

/** RFC 3464 §2.3.3 Action: one per report (the relay writes one report per kind). */
export type DsnAction = 'failed' | 'delayed' | 'relayed';

const TEXT: Record<DsnAction, { subject: string; summary: string }> = {
  failed: {
    subject: 'Undelivered Mail Returned to Sender',
    summary: 'Your message could not be delivered to one or more recipients.',
  },
  delayed: {
    subject: 'Delayed Mail (still being retried)',
    summary:
      'Your message could not be delivered to one or more recipients yet. Delivery is still being attempted: you do not need to send it again.',
  },
  relayed: {
    subject: 'Relayed Mail Delivery Report',
    summary:
      'Your message was handed to the next mail server of one or more recipients, which does not send delivery notifications: you will receive no further notification for them.',
  },
};

export interface DsnRecipient {
  address: string;
  /** RFC 3464 §2.3.4 Status: 5.x.x failed, 4.x.x delayed (4.4.7 expired is reported as failed), 2.x.x relayed. */
  status: string;
  reply: string;
  remoteMta?: string;
  /** The recipient's ORCPT (`addr-type;address`): RFC 3464 §2.3.1 Original-Recipient. */
  orcpt?: string;
}

export interface DsnInput {
  /** Default 'failed'. */
  action?: DsnAction;
  reportingMta: string;
  queueId: string;
  originalSender: string;
  arrivalDate: Date;
  recipients: DsnRecipient[];
  /** Header section of the original message (RFC 3464 §2: text/rfc822-headers). */
  originalHeaders: string;
  /** RET=FULL: the whole original message, returned as message/rfc822 instead of its headers. */
  fullOriginal?: Buffer;
  /** The client's ENVID: RFC 3464 §2.2.1 Original-Envelope-Id. */
  envid?: string;
  /**
   * A delayed report: when the queue gives up on the recipients (arrival + retry.maxQueueLifetime),
   * RFC 3464 §2.3.9 Will-Retry-Until. Not written in other reports (the field is for delayed ones).
   */
  willRetryUntil?: Date;
  now: Date;
  boundary: string;
  messageId: string;
}

/** Whether a DSN may be sent: never to the null sender, so bounces cannot loop. */
export function shouldSendDsn(sender: string, enabled: boolean): boolean {
  return enabled && sender !== '';
}

export function statusCodeOf(reply: string, expired: boolean): string {
  const m = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply);
  if (m?.[1]?.startsWith('5')) return m[1];
  // RFC 3463 4.4.7: delivery time expired, reported as permanent once the queue gives up.
  return expired ? '4.4.7' : '5.0.0';
}

/** The Status of a recipient in a report of `action`: the reply's enhanced code when it fits the class. */
export function dsnStatus(action: DsnAction, reply: string, expired: boolean): string {
  if (action === 'failed') return statusCodeOf(reply, expired);
  const m = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1];
  const wanted = action === 'delayed' ? '4' : '2';
  return m?.startsWith(wanted) ? m : `${wanted}.0.0`;
}

export function buildDsn(input: DsnInput): Buffer {
  const b = input.boundary;
  const action = input.action ?? 'failed';
  const human = [
    `This is the mail system at ${input.reportingMta}.`,
    '',
    TEXT[action].summary,
    '',
    ...input.recipients.map((r) => `<${r.address}>: ${r.reply.replace(/[\r\n]+/g, ' ')}`),
    '',
  ].join('\r\n');
  const oneLine = (v: string) => v.replace(/[\r\n]+/g, ' ');
  const perMessage = [
    ...(input.envid ? [`Original-Envelope-Id: ${oneLine(input.envid)}`] : []),
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `X-Mailfleet-Queue-ID: ${input.queueId}`,
    `Arrival-Date: ${input.arrivalDate.toUTCString()}`,
  ].join('\r\n');
  const perRecipient = input.recipients
    .map((r) => {
      const lines = [
        ...(r.orcpt ? [`Original-Recipient: ${oneLine(r.orcpt)}`] : []),
        `Final-Recipient: rfc822; ${r.address}`,
        `Action: ${action}`,
        `Status: ${r.status}`,
      ];
      if (r.remoteMta) lines.push(`Remote-MTA: dns; ${r.remoteMta}`);
      if (/^\d{3}\b/.test(r.reply)) lines.push(`Diagnostic-Code: smtp; ${r.reply.replace(/[\r\n]+/g, ' ')}`);
      if (action === 'delayed' && input.willRetryUntil)
        lines.push(`Will-Retry-Until: ${input.willRetryUntil.toUTCString()}`);
      return lines.join('\r\n');
    })
    .join('\r\n\r\n');
  const text = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    `To: <${input.originalSender}>`,
    `Subject: ${TEXT[action].subject}`,
    `Date: ${input.now.toUTCString()}`,
    `Message-ID: <${input.messageId}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    human,
    `--${b}`,
    'Content-Type: message/delivery-status',
    '',
    perMessage,
    '',
    perRecipient,
    '',
    `--${b}`,
  ].join('\r\n');
  if (input.fullOriginal) {
    // The original as it was queued (CRLF lines, as the spool keeps it), byte for byte.
    const body = input.fullOriginal;
    const crlf = body.length >= 2 && body[body.length - 2] === 13 && body[body.length - 1] === 10;
    return Buffer.concat([
      Buffer.from(`${text}\r\nContent-Type: message/rfc822\r\n\r\n`),
      body,
      Buffer.from(`${crlf ? '' : '\r\n'}--${b}--\r\n`),
    ]);
  }
  const headers = [
    'Content-Type: text/rfc822-headers',
    '',
    input.originalHeaders.replace(/\r?\n/g, '\r\n').trimEnd(),
    '',
    `--${b}--`,
    '',
  ].join('\r\n');
  return Buffer.from(`${text}\r\n${headers}`);
}

/** The header section of a raw message (up to the first empty line). */
export function headerSection(body: Buffer): string {
  const end = body.indexOf('\r\n\r\n');
  const text = body.subarray(0, end < 0 ? Math.min(body.length, 64 * 1024) : end).toString('latin1');
  return text;
}
