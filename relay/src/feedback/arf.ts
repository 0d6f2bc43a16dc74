// RFC 5965 Abuse Reporting Format: a feedback loop's report that a recipient marked a message as
// spam (or reported fraud, a virus...). Pure.
import { fieldGroups, first, typedAddress } from './fields.ts';

/** RFC 5965 §7.3 feedback types; anything else is kept as `other`. */
const FEEDBACK_TYPES = ['abuse', 'fraud', 'virus', 'other', 'not-spam', 'auth-failure'] as const;
export type FeedbackType = (typeof FEEDBACK_TYPES)[number];

export interface FeedbackReport {
  feedbackType: FeedbackType;
  userAgent?: string;
  /** Original-Rcpt-To (often redacted by the provider, so the VERP address is what counts). */
  originalRecipient?: string;
  originalMailFrom?: string;
  sourceIp?: string;
  reportedDomain?: string;
  arrivalDate?: string;
}

/** The fields of a message/feedback-report body; undefined when it has no Feedback-Type. */
export function parseFeedbackReport(text: string): FeedbackReport | undefined {
  const group = fieldGroups(text)[0];
  const type = first(group, 'feedback-type')?.toLowerCase().trim();
  if (!type) return undefined;
  const report: FeedbackReport = {
    feedbackType: (FEEDBACK_TYPES as readonly string[]).includes(type) ? (type as FeedbackType) : 'other',
  };
  const set = (key: keyof Omit<FeedbackReport, 'feedbackType'>, value: string | undefined) => {
    if (value) report[key] = value;
  };
  set('userAgent', first(group, 'user-agent'));
  set('originalRecipient', typedAddress(first(group, 'original-rcpt-to'))?.toLowerCase());
  set('originalMailFrom', typedAddress(first(group, 'original-mail-from'))?.toLowerCase());
  set('sourceIp', first(group, 'source-ip'));
  set('reportedDomain', first(group, 'reported-domain'));
  set('arrivalDate', first(group, 'arrival-date') ?? first(group, 'received-date'));
  return report;
}
