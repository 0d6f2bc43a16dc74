// The one place a report from the return-path listener is recorded: read it, decide what it
// means (outcome.ts), count it, write its accounting line, then hand hard bounces and complaints
// to the feedback listeners (the seam the pool's suppression list hooks into).
import type { RelayMetrics } from '../metrics/metrics.ts';
import type { AccountingLog, FeedbackRecord } from '../outcomes/accounting.ts';
import type { VerpFields } from '../return-path/verp.ts';
import { feedbackOf, SUPPRESSING, type Feedback, type FeedbackListener } from './outcome.ts';
import { readReport } from './report.ts';

export interface FeedbackRecorderDeps {
  metrics: RelayMetrics;
  accounting(): AccountingLog | undefined;
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
  now(): number;
}

function feedbackRecord(f: Feedback, now: number): FeedbackRecord {
  return {
    time: new Date(now).toISOString(),
    queueId: f.queueId,
    sendingDomain: f.sendingDomain,
    recipient: f.recipient,
    outcome: 'feedback',
    kind: f.kind,
    category: f.category,
    ...(f.status ? { status: f.status } : {}),
    reason: f.reason,
    ...(f.messageId ? { messageId: f.messageId } : {}),
    source: f.source,
  };
}

export class FeedbackRecorder {
  private readonly deps: FeedbackRecorderDeps;
  /** Told about every hard bounce and complaint, in registration order. */
  private readonly listeners: FeedbackListener[] = [];

  constructor(deps: FeedbackRecorderDeps) {
    this.deps = deps;
  }

  /** Registers a consumer of hard bounces and complaints (the suppression list). */
  onFeedback(listener: FeedbackListener): void {
    this.listeners.push(listener);
  }

  async record(token: VerpFields, raw: Buffer): Promise<Feedback> {
    const feedback = feedbackOf(token, await readReport(raw));
    const { metrics } = this.deps;
    metrics.feedbackReports.inc({
      sending_domain: metrics.domainLabel(feedback.sendingDomain),
      kind: feedback.kind,
      category: feedback.category,
    });
    this.deps.accounting()?.write(feedbackRecord(feedback, this.deps.now()));
    this.deps.log('info', 'return-path report', {
      queueId: feedback.queueId,
      domain: feedback.sendingDomain,
      recipient: feedback.recipient,
      kind: feedback.kind,
      category: feedback.category,
    });
    // A listener that fails makes the DATA reply 451: the report comes again (counted twice, but
    // never a hard bounce the suppression list missed).
    if (SUPPRESSING.has(feedback.kind)) for (const listener of this.listeners) await listener(feedback);
    return feedback;
  }
}
