// RFC 3464 delivery status notifications, and the common non-standard bounces that carry no
// message/delivery-status part (qmail, old Exim and Exchange, mailing-list software): what each
// says about each recipient. Pure; classification reuses delivery/classify.ts, the same function
// that judges the relay's own SMTP replies, so a 5.1.1 means the same whether it came back in
// the session or days later.
import { classifyReply, type BounceCategory } from '../delivery/classify.ts';
import { fieldGroups, first, typedAddress } from './fields.ts';

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface DsnRecipient {
  /** Final-Recipient (or the address found in a non-standard bounce); lower-cased. */
  recipient?: string;
  action: DsnAction;
  /** Enhanced status code (RFC 3463), e.g. `5.1.1`. */
  status: string;
  /** Diagnostic-Code text without its type (`smtp; `), or the reply line found. */
  diagnostic: string;
  remoteMta?: string;
  /** hard: permanent failure (suppress); soft: a failure that may pass (4.x.x, mailbox full). */
  severity: 'hard' | 'soft' | 'none';
  category?: BounceCategory;
}

const ACTIONS: readonly DsnAction[] = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'];
const STATUS = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;

/** Severity and category of a status with its diagnostic, through classifyReply. */
function judge(
  action: DsnAction,
  status: string,
  diagnostic: string,
): Pick<DsnRecipient, 'severity' | 'category'> {
  if (action !== 'failed') return { severity: 'none' };
  // The Status field is authoritative (RFC 3464 §2.3.4); the diagnostic only adds words.
  const verdict = classifyReply({
    code: status.startsWith('5') ? 550 : 450,
    text: `${status} ${diagnostic}`,
  });
  if (verdict.outcome !== 'bounced') return { severity: 'soft' };
  // A full mailbox is permanent by its code but clears by itself: not a reason to suppress.
  if (verdict.category === 'mailbox-full') return { severity: 'soft', category: verdict.category };
  return { severity: 'hard', ...(verdict.category ? { category: verdict.category } : {}) };
}

/** The recipients of a message/delivery-status body (RFC 3464 §2.1: per-message group first). */
export function parseDeliveryStatus(text: string): DsnRecipient[] {
  const groups = fieldGroups(text);
  const out: DsnRecipient[] = [];
  for (const g of groups) {
    const actionText = first(g, 'action')?.toLowerCase().split(/[\s(]/)[0] ?? '';
    const recipient = typedAddress(first(g, 'final-recipient') ?? first(g, 'original-recipient'));
    if (!recipient && !first(g, 'status')) continue;
    const action = (ACTIONS as readonly string[]).includes(actionText) ? (actionText as DsnAction) : 'failed';
    const diagnostic = typedAddress(first(g, 'diagnostic-code')) ?? '';
    const status =
      STATUS.exec(first(g, 'status') ?? '')?.[0] ??
      STATUS.exec(diagnostic)?.[0] ??
      (action === 'failed' ? '5.0.0' : '2.0.0');
    const entry: DsnRecipient = {
      action,
      status,
      diagnostic,
      ...judge(action, status, diagnostic),
    };
    if (recipient) entry.recipient = recipient.toLowerCase();
    const remote = typedAddress(first(g, 'remote-mta'));
    if (remote) entry.remoteMta = remote;
    out.push(entry);
  }
  return out;
}

/** Phrases of non-standard bounces that say a delivery is only delayed (still being retried). */
const DELAYED =
  /(delivery (has been |is )?delayed|not (yet )?been delivered|will (continue to )?(retry|try)|still (trying|retrying)|warning: message .* delayed)/i;
/** An SMTP reply or enhanced status in prose: "550 5.1.1 ...", "said: 550 ...", "5.7.1". */
const REPLY = /(?:^|[\s:(])([45]\d\d)[ -](?:([45]\.\d{1,3}\.\d{1,3})\s*)?(.{0,200})/m;

/**
 * A bounce without a delivery-status part: the first SMTP reply or enhanced status code in its
 * text, and the first address in angle brackets (qmail's `<user@example.org>:` line).
 */
export function parseBounceText(text: string): DsnRecipient | undefined {
  const reply = REPLY.exec(text);
  const enhanced = STATUS.exec(text);
  if (!reply && !enhanced) return undefined;
  const delayed = DELAYED.test(text) && !/permanent/i.test(text);
  const action: DsnAction = delayed ? 'delayed' : 'failed';
  const status = reply?.[2] ?? enhanced?.[0] ?? (reply?.[1]?.startsWith('5') ? '5.0.0' : '4.0.0');
  const diagnostic = reply
    ? `${reply[1]} ${reply[2] ?? ''} ${reply[3]!.trim()}`.replace(/\s+/g, ' ').trim()
    : '';
  const entry: DsnRecipient = { action, status, diagnostic, ...judge(action, status, diagnostic) };
  const address = /<([^<>\s@]+@[^<>\s@]+)>/.exec(text)?.[1];
  if (address) entry.recipient = address.toLowerCase();
  return entry;
}
