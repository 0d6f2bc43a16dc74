// The suppression list as the relay uses it: the RCPT TO check (counted and logged), the feedback
// hook that hard bounces and complaints call (`onFeedback`), the relay's own synchronous hard
// bounces, the API routes and the metrics. relay.ts holds one and calls it from thin call sites.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SmtpReply } from '../errors.ts';
import type { SuppressionConfig } from '../config/types.ts';
import { durationMs } from '../config/duration.ts';
import type { BounceCategory } from '../delivery/classify.ts';
import type { Route } from '../admin/http.ts';
import {
  entryFromFeedback,
  suppressedReply,
  type Feedback,
  type SuppressionReason,
  type SuppressionSource,
} from './entry.ts';
import { SuppressionList } from './list.ts';
import { suppressionRoutes } from './api.ts';

export interface SuppressionServiceOptions {
  config: () => SuppressionConfig;
  registry: Registry;
  /** The bounded sending_domain label value for a domain (configured ones, else "other"). */
  domainLabel: (domain: string) => string;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
  now: () => number;
}

/** Permanent failures that say the address itself is bad (RFC 3463 X.1.x, 5.2.1 disabled). */
const HARD_BOUNCE_CATEGORIES: readonly BounceCategory[] = ['bad-mailbox', 'bad-domain'];

export class SuppressionService {
  readonly list: SuppressionList;
  private readonly options: SuppressionServiceOptions;
  private readonly refused: Counter<'sending_domain' | 'reason'>;
  private readonly added: Counter<'reason' | 'source'>;

  constructor(options: SuppressionServiceOptions) {
    this.options = options;
    this.list = new SuppressionList({ file: options.config().file, now: options.now });
    const p = 'mailfleet_relay_';
    const registers = [options.registry];
    this.refused = new Counter({
      name: `${p}suppressed_recipients_total`,
      help: 'Recipients refused at RCPT TO because they are on the suppression list, by sending domain and reason.',
      labelNames: ['sending_domain', 'reason'],
      registers,
    });
    this.added = new Counter({
      name: `${p}suppressions_added_total`,
      help: 'Recipients added to the suppression list by hard bounces and complaints this relay saw, by reason and source.',
      labelNames: ['reason', 'source'],
      registers,
    });
    const list = this.list;
    new Gauge({
      name: `${p}suppression_entries`,
      help: 'Entries on the suppression list (this relay’s copy).',
      registers,
      // Each worker process holds the whole list (relay/src/workers/): not a sum.
      aggregator: 'max',
      collect() {
        this.set(list.size);
      },
    });
  }

  async open(): Promise<void> {
    const started = performance.now();
    const loaded = await this.list.open();
    this.options.log('info', 'suppression list loaded', {
      file: this.options.config().file,
      ...loaded,
      ms: Math.round(performance.now() - started),
    });
  }

  /** The 550 for a suppressed recipient, or undefined. Counted and logged. */
  rcpt(sender: string, recipient: string): SmtpReply | undefined {
    if (!this.options.config().enabled) return undefined;
    const reason = this.list.check(sender, recipient);
    if (reason === undefined) return undefined;
    const sendingDomain = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase();
    this.refused.inc({ sending_domain: this.options.domainLabel(sendingDomain), reason });
    this.options.log('info', 'recipient suppressed', { sendingDomain, recipient, reason });
    return suppressedReply(reason);
  }

  /**
   * Mail came back: a hard bounce or a complaint about `recipient`. The one entry point for every
   * source (the relay's own 5xx, inbound DSNs, ARF reports). Resolves once the entry is durable.
   */
  async onFeedback(f: Feedback): Promise<void> {
    const c = this.options.config();
    if (!c.enabled) return;
    const entry = entryFromFeedback(
      f,
      { hardBounceTtlMs: durationMs(c.hardBounceTtl), complaintTtlMs: durationMs(c.complaintTtl) },
      this.options.now(),
    );
    await this.list.add([entry]);
    this.counted(entry.reason, entry.source);
    this.options.log('info', 'recipient added to the suppression list', {
      recipient: entry.address,
      scope: entry.scope,
      reason: entry.reason,
      source: entry.source,
      messageId: entry.messageId,
    });
  }

  /** A recipient bounced during this relay's own delivery attempt (a synchronous 5xx). */
  deliveryBounced(input: {
    recipient: string;
    sender: string;
    queueId: string;
    category: BounceCategory | undefined;
  }): void {
    if (!this.options.config().fromHardBounces) return;
    if (input.category === undefined || !HARD_BOUNCE_CATEGORIES.includes(input.category)) return;
    // A DSN (null sender) that bounces says nothing about a recipient of the pool's senders.
    if (input.sender === '') return;
    this.onFeedback({
      recipient: input.recipient,
      kind: 'hard-bounce',
      sendingDomain: input.sender.slice(input.sender.lastIndexOf('@') + 1),
      messageId: input.queueId,
      source: 'smtp',
    }).catch((err: unknown) =>
      this.options.log('error', 'suppression entry not journalled', {
        recipient: input.recipient,
        err: String(err),
      }),
    );
  }

  routes(): Route[] {
    return suppressionRoutes({ list: this.list, now: this.options.now });
  }

  counted(reason: SuppressionReason, source: SuppressionSource): void {
    this.added.inc({ reason, source });
  }

  close(): Promise<void> {
    return this.list.close();
  }
}
