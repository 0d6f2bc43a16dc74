// One event as the webhook receiver sees it (a line of JSON), and how each source makes one.
// Pure: a receiver deduplicates on `id`, so the id is derived from what the event is about, never
// from when it was sent: an event retried from the outbox, or made again after a crash (a delivery
// repeated because its final state had not reached the spool), keeps its id.
import { createHash, randomUUID } from 'node:crypto';
import type { EventType } from '../../../contract/config.ts';

export interface MailEvent {
  /** Idempotency key: the same event, however often sent, has the same id. */
  id: string;
  type: EventType;
  /** When it happened, ISO 8601. */
  time: string;
  sendingDomain: string;
  recipient?: string;
  /** The relay's queue id (relay events) or the message id the tracking token carries. */
  messageId?: string;
  /** Reply of the receiving server (delivered, deferred, bounced). */
  reply?: string;
  /** Bounce category (delivery/classify.ts), `expired`, or the ARF feedback type. */
  category?: string;
  /** Delivery attempts so far. */
  attempts?: number;
  /** A bounce that came back after the relay's delivery (through the return path). */
  async?: boolean;
  /** clicked: the link's original URL. */
  url?: string;
  /** opened, clicked: human or machine (tracker/classify.ts). */
  reader?: 'human' | 'machine';
}

/** 32 hex characters of SHA-256 over the fields that say which event this is. */
export function eventId(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

export interface OutcomeFacts {
  outcome: 'delivered' | 'deferred' | 'bounced' | 'expired' | 'handedoff';
  queueId: string;
  sendingDomain: string;
  recipient: string;
  reply: string;
  category: string;
  attempts: number;
  now: number;
}

/** A recipient outcome at the relay; handed-off recipients make their event at the peer. */
export function outcomeEvent(o: OutcomeFacts): MailEvent | undefined {
  if (o.outcome === 'handedoff') return undefined;
  const type = o.outcome === 'expired' ? 'bounced' : o.outcome;
  // A deferral happens once per attempt; the final outcomes once per recipient.
  const id =
    type === 'deferred'
      ? eventId(type, o.queueId, o.recipient, o.attempts)
      : eventId(type, o.queueId, o.recipient);
  const event: MailEvent = {
    id,
    type,
    time: new Date(o.now).toISOString(),
    sendingDomain: o.sendingDomain,
    recipient: o.recipient,
    messageId: o.queueId,
    reply: o.reply,
    attempts: o.attempts,
  };
  const category = o.outcome === 'expired' ? 'expired' : o.category;
  if (category) event.category = category;
  return event;
}

export interface FeedbackFacts {
  kind: string;
  queueId: string;
  sendingDomain: string;
  recipient: string;
  category: string;
  reason: string;
  now: number;
}

/** A report at the return path: a hard bounce after delivery or a complaint; others are not sent. */
export function feedbackEvent(f: FeedbackFacts): MailEvent | undefined {
  const type = f.kind === 'hard-bounce' ? 'bounced' : f.kind === 'complaint' ? 'complained' : undefined;
  if (!type) return undefined;
  return {
    // The same report received twice (a 451 made the sender retry) is the same event.
    id: eventId(type, 'feedback', f.queueId, f.recipient),
    type,
    time: new Date(f.now).toISOString(),
    sendingDomain: f.sendingDomain,
    recipient: f.recipient,
    messageId: f.queueId,
    category: f.category,
    reply: f.reason,
    ...(type === 'bounced' ? { async: true } : {}),
  };
}

/** A recipient refused at RCPT TO because it is on the suppression list: each refusal is one event. */
export function suppressedEvent(sendingDomain: string, recipient: string, now: number): MailEvent {
  return {
    id: randomUUID().replaceAll('-', ''),
    type: 'suppressed',
    time: new Date(now).toISOString(),
    sendingDomain,
    recipient,
  };
}

/** An open pixel fetched or a tracked link followed: each fetch is one event. */
export function trackerEvent(
  kind: 'opened' | 'clicked',
  t: { domain: string; messageId: string; url?: string },
  reader: 'human' | 'machine',
  now: number,
): MailEvent {
  return {
    id: randomUUID().replaceAll('-', ''),
    type: kind,
    time: new Date(now).toISOString(),
    sendingDomain: t.domain,
    messageId: t.messageId,
    reader,
    ...(t.url !== undefined ? { url: t.url } : {}),
  };
}
