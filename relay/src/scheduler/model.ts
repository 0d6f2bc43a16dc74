// The in-memory queue model: a queued message, its recipients, and its delivery jobs (one per
// destination). Built from a spool envelope (new or recovered); no I/O here.
import type { Envelope, RecipientState, RecipientStatus } from '../spool/record.ts';
import { domainOf } from '../policy/intake.ts';

export type JobState = 'ready' | 'deferred' | 'inflight';

export interface QueuedRecipient {
  index: number;
  address: string;
  /** undefined while not final and never attempted. */
  status: RecipientStatus | undefined;
  attempts: number;
  reply?: string;
  /** Its one "delayed" DSN was queued. */
  delayNotified?: boolean;
}

export interface Job {
  message: QueuedMessage;
  /** Scheduling key: the recipient domain, or "smarthost". */
  destination: string;
  /** Recipient domain, for MX routing. */
  domain: string;
  recipientIndexes: number[];
  attempts: number;
  state: JobState;
  /** Epoch ms; meaningful while deferred. */
  nextAttemptAt: number;
  lastReply?: string;
  /** Arrival order, set by the scheduler; a rebuilt queue keeps jobs in this order. */
  seq: number;
  /** Key of the queue the ready job sits in (its destination and shaping class). */
  queueKey?: string;
  /** Why a ready job sits in no queue: its sending domain is suspended, or its MX is looked up. */
  hold?: 'domain suspended' | 'resolving MX';
}

export interface QueuedMessage {
  envelope: Envelope;
  /** Domain of the envelope sender ('' for the null sender). */
  senderDomain: string;
  recipients: QueuedRecipient[];
  /** Jobs still to do, by destination. */
  jobs: Map<string, Job>;
  /** Set by delete: results of an attempt in flight are then ignored. */
  deleted: boolean;
}

export type DestinationOf = (recipientDomain: string) => string;

export function buildMessage(
  envelope: Envelope,
  states: Map<number, RecipientState>,
  destinationOf: DestinationOf,
  now: number,
): QueuedMessage {
  const message: QueuedMessage = {
    envelope,
    senderDomain: domainOf(envelope.from),
    recipients: [],
    jobs: new Map(),
    deleted: false,
  };
  envelope.recipients.forEach((address, index) => {
    const state = states.get(index);
    const recipient: QueuedRecipient = {
      index,
      address,
      status: state?.status === 'deferred' ? undefined : state?.status,
      attempts: state?.attempts ?? 0,
    };
    if (state?.reply) recipient.reply = state.reply;
    if (state?.delayNotified) recipient.delayNotified = true;
    message.recipients.push(recipient);
    if (recipient.status !== undefined) return;
    const domain = domainOf(address);
    const destination = destinationOf(domain);
    let job = message.jobs.get(destination);
    if (!job) {
      job = {
        message,
        destination,
        domain,
        recipientIndexes: [],
        attempts: 0,
        state: 'ready',
        nextAttemptAt: now,
        seq: 0,
      };
      message.jobs.set(destination, job);
    }
    job.recipientIndexes.push(index);
    // A recovered deferral keeps its attempt count and retry time.
    if (state?.status === 'deferred') {
      job.attempts = Math.max(job.attempts, state.attempts);
      if (state.nextAttemptAt && state.nextAttemptAt > now) {
        job.state = 'deferred';
        job.nextAttemptAt = Math.max(job.nextAttemptAt, state.nextAttemptAt);
      }
    }
  });
  return message;
}
