// What one report at a return-path address means for the message and recipient its VERP address
// names. Pure: the token (verified at RCPT) and the parsed report in, one Feedback out.
import type { BounceCategory } from '../delivery/classify.ts';
import type { VerpFields } from '../return-path/verp.ts';
import type { InboundReport } from './report.ts';

/**
 * hard-bounce: a permanent failure after the relay's delivery (suppress the recipient).
 * soft-bounce: a failure that may pass (4.x.x, mailbox full). delayed: still being retried.
 * complaint: an ARF report (the recipient marked it as spam). not-spam: an ARF withdrawal.
 * unrecognised: anything else (an auto-reply, a human's answer): counted, nothing more.
 */
export type FeedbackKind =
  'hard-bounce' | 'soft-bounce' | 'delayed' | 'complaint' | 'not-spam' | 'unrecognised';

export interface Feedback {
  sendingDomain: string;
  recipient: string;
  /** Queue id of the original message (from the VERP address). */
  queueId: string;
  kind: FeedbackKind;
  /** Bounce category (delivery/classify.ts), or the ARF feedback type for complaints. */
  category: BounceCategory | string;
  /** Enhanced status code of a bounce. */
  status?: string;
  /** The diagnostic, the ARF user agent, or the subject of an unrecognised message: for humans. */
  reason: string;
  /** Message-ID of the returned original, when the report carried it. */
  messageId?: string;
  /** Where the verdict came from. */
  source: 'dsn' | 'bounce-text' | 'arf' | 'other';
}

/**
 * The hard bounces and complaints the relay hands on (issue 19 part B hooks the pool's
 * suppression list here). Called once per report, after it was counted.
 */
export type FeedbackListener = (feedback: Feedback) => void | Promise<void>;

/** Kinds that say the recipient should get no more mail from this sending domain. */
export const SUPPRESSING: ReadonlySet<FeedbackKind> = new Set(['hard-bounce', 'complaint']);

export function feedbackOf(token: VerpFields, report: InboundReport): Feedback {
  const base = {
    sendingDomain: token.sendingDomain,
    recipient: token.recipient,
    queueId: token.queueId,
    ...('originalMessageId' in report && report.originalMessageId
      ? { messageId: report.originalMessageId }
      : {}),
  };
  if (report.type === 'arf') {
    const kind = report.report.feedbackType === 'not-spam' ? 'not-spam' : 'complaint';
    return {
      ...base,
      kind,
      category: report.report.feedbackType,
      reason: `${report.report.feedbackType} report${report.report.userAgent ? ` from ${report.report.userAgent}` : ''}`,
      source: 'arf',
    };
  }
  if (report.type === 'unrecognised') {
    return { ...base, kind: 'unrecognised', category: 'other', reason: report.subject, source: 'other' };
  }
  // The VERP address is authoritative for whom it is about; a DSN for several recipients (a
  // forwarder's) is read for the one that matches, else its first failure.
  const entry =
    report.recipients.find((r) => r.recipient === token.recipient) ??
    report.recipients.find((r) => r.action === 'failed') ??
    report.recipients[0]!;
  const kind: FeedbackKind =
    entry.action === 'failed'
      ? entry.severity === 'hard'
        ? 'hard-bounce'
        : 'soft-bounce'
      : entry.action === 'delayed'
        ? 'delayed'
        : 'unrecognised';
  return {
    ...base,
    kind,
    category: entry.category ?? (kind === 'soft-bounce' ? 'transient' : 'other'),
    status: entry.status,
    reason: entry.diagnostic || `status ${entry.status}`,
    source: report.standard ? 'dsn' : 'bounce-text',
  };
}
