// Whether a delivery reply means delivered, deferred or bounced, and why it bounced. One pure,
// table-tested function (RFC 5321 §4.2.1 reply classes, RFC 3463 enhanced status codes).

export type Outcome = 'delivered' | 'deferred' | 'bounced';

export type BounceCategory =
  'bad-mailbox' | 'bad-domain' | 'policy' | 'mailbox-full' | 'content' | 'routing' | 'other';

export interface ReplyInput {
  /** SMTP reply code; undefined when no reply was received (connection, TLS, timeout). */
  code?: number;
  /** The reply text, enhanced code included when the server sent one. */
  text?: string;
}

export interface Classification {
  outcome: Outcome;
  category?: BounceCategory;
}

const ENHANCED = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

// RFC 3463 subject.detail -> category; more specific entries first.
const BY_ENHANCED: [RegExp, BounceCategory][] = [
  [/^1\.(2|10)$/, 'bad-domain'],
  [/^1\.\d+$/, 'bad-mailbox'],
  [/^2\.2$/, 'mailbox-full'],
  [/^2\.3$/, 'content'],
  [/^2\.\d+$/, 'bad-mailbox'],
  [/^3\.4$/, 'content'],
  [/^4\.\d+$/, 'routing'],
  [/^5\.\d+$/, 'other'],
  [/^6\.\d+$/, 'content'],
  [/^7\.\d+$/, 'policy'],
];

// Servers that send no enhanced code still say what they mean in the text.
const BY_TEXT: [RegExp, BounceCategory][] = [
  [/spam|block|blacklist|denylist|reputation|policy|rejected for policy|not authorized|spf|dmarc/i, 'policy'],
  [/quota|mailbox (is )?full|over ?quota|insufficient storage/i, 'mailbox-full'],
  [
    /user unknown|no such (user|mailbox)|unknown (user|recipient)|does not exist|mailbox unavailable|invalid recipient|recipient rejected/i,
    'bad-mailbox',
  ],
  [/domain (not found|does not exist)|host (or domain name )?not found|no mx|unrouteable/i, 'bad-domain'],
  [/loop|relay(ing)? (access )?denied|routing/i, 'routing'],
  [/message (size|too (big|large))|content|virus|malware/i, 'content'],
];

export function classifyReply(input: ReplyInput): Classification {
  const code = input.code;
  if (code === undefined || !Number.isInteger(code)) return { outcome: 'deferred' };
  if (code >= 200 && code < 300) return { outcome: 'delivered' };
  if (code >= 400 && code < 500) return { outcome: 'deferred' };
  if (code < 500 || code >= 600) return { outcome: 'deferred' };
  return { outcome: 'bounced', category: bounceCategory(input.text ?? '') };
}

function bounceCategory(text: string): BounceCategory {
  const enhanced = ENHANCED.exec(text);
  if (enhanced && enhanced[1] === '5') {
    const subjectDetail = `${enhanced[2]}.${enhanced[3]}`;
    const byCode = BY_ENHANCED.find(([re]) => re.test(subjectDetail))?.[1];
    // X.0.0 says nothing; let the text decide.
    if (byCode && !(subjectDetail === '0.0' || byCode === 'other')) return byCode;
  }
  return BY_TEXT.find(([re]) => re.test(text))?.[1] ?? 'other';
}
