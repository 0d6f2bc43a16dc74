// Reading one message that arrived at a return-path address: which kind of report it is (RFC 3464
// DSN, RFC 5965 ARF, a non-standard bounce, or something else such as an auto-reply) and what it
// says. MIME is parsed by postal-mime (README, dependencies): decoding transfer encodings and
// nested message/* parts is not ours to reinvent; the report bodies it hands back are parsed by
// the pure modules beside this one.
import PostalMime from 'postal-mime';
import { parseDeliveryStatus, parseBounceText, type DsnRecipient } from './dsn.ts';
import { parseFeedbackReport, type FeedbackReport } from './arf.ts';

export type InboundReport =
  | { type: 'dsn'; recipients: DsnRecipient[]; standard: boolean; originalMessageId?: string }
  | { type: 'arf'; report: FeedbackReport; originalMessageId?: string }
  | { type: 'unrecognised'; subject: string };

const DELIVERY_STATUS = new Set(['message/delivery-status', 'message/global-delivery-status']);
const FEEDBACK = 'message/feedback-report';
const ORIGINAL = new Set([
  'message/rfc822',
  'text/rfc822-headers',
  'message/global',
  'message/global-headers',
]);

function text(content: ArrayBuffer | Uint8Array | string): string {
  return typeof content === 'string' ? content : new TextDecoder('utf-8').decode(content);
}

/** Message-ID of the returned original (its headers are the start of the part). */
function messageIdOf(original: string | undefined): string | undefined {
  if (!original) return undefined;
  const head = original.split(/\r?\n\r?\n/, 1)[0] ?? '';
  return /^message-id:\s*(<[^>\r\n]+>)/im.exec(head)?.[1];
}

export async function readReport(raw: Buffer): Promise<InboundReport> {
  let email: Awaited<ReturnType<typeof PostalMime.parse>>;
  try {
    email = await PostalMime.parse(raw, { rfc822Attachments: true, attachmentEncoding: 'utf8' });
  } catch {
    // Beyond postal-mime's limits (nesting, header size): kept as unrecognised, never retried.
    return { type: 'unrecognised', subject: '' };
  }
  const parts = email.attachments.map((a) => ({ type: a.mimeType.toLowerCase(), body: text(a.content) }));
  const original = parts.find((p) => ORIGINAL.has(p.type))?.body;
  const originalMessageId = messageIdOf(original);
  const withId = originalMessageId ? { originalMessageId } : {};
  const feedback = parts.find((p) => p.type === FEEDBACK);
  const report = feedback && parseFeedbackReport(feedback.body);
  if (report) return { type: 'arf', report, ...withId };
  const status = parts.find((p) => DELIVERY_STATUS.has(p.type));
  const recipients = status ? parseDeliveryStatus(status.body) : [];
  if (recipients.length > 0) return { type: 'dsn', recipients, standard: true, ...withId };
  const bounce = parseBounceText(email.text ?? '');
  if (bounce && looksLikeBounce(email.subject ?? '', email.from?.address ?? ''))
    return { type: 'dsn', recipients: [bounce], standard: false, ...withId };
  return { type: 'unrecognised', subject: email.subject ?? '' };
}

/**
 * A non-standard bounce comes from a mailer daemon or says so in its subject; an out-of-office
 * reply that happens to quote "550" does not. (Auto-Submitted cannot tell them apart: Postfix
 * marks its own DSNs auto-replied, as RFC 3834 vacation replies are.)
 */
function looksLikeBounce(subject: string, from: string): boolean {
  return (
    /mailer-daemon|postmaster|mail delivery|bounce/i.test(from) ||
    /undeliver|undelivered|delivery (status|failure|has failed|notification)|returned mail|failure notice|could not be delivered|non-?delivery/i.test(
      subject,
    )
  );
}
