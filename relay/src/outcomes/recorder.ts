// What happens when a recipient reaches an outcome: the per-domain counters, the bounce-rate
// window and one accounting line. The scheduler reports; this is the one place that records.
import type { RelayMetrics } from '../metrics/metrics.ts';
import type { OutcomeEvent } from '../scheduler/scheduler.ts';
import type { AccountingLog, AccountingRecord } from './accounting.ts';

export interface OutcomeSinks {
  metrics: RelayMetrics;
  /** The accounting log in use (replaced when a reload changes accounting.file). */
  accounting(): AccountingLog | undefined;
}

/** The bounce category an outcome is counted under: the classifier's, or `expired`. */
function categoryOf(e: OutcomeEvent): string {
  return e.outcome === 'expired' ? 'expired' : (e.result?.category ?? '');
}

/** The accounting line of an outcome. Pure. */
function accountingRecord(e: OutcomeEvent): AccountingRecord {
  return {
    time: new Date(e.now).toISOString(),
    queueId: e.message.envelope.id,
    sender: e.message.envelope.from,
    recipient: e.recipient.address,
    destination: e.destination,
    host: e.host,
    outcome: e.outcome,
    reply: e.result?.reply ?? e.recipient.reply ?? '',
    category: categoryOf(e),
    attempts: e.recipient.attempts,
    delay: Math.round((e.now - e.message.envelope.receivedAt) / 10) / 100,
    ...(e.tls ? { tlsPolicy: e.tls.policy, tlsResult: e.tls.result } : {}),
  };
}

export function recordOutcome(sinks: OutcomeSinks, e: OutcomeEvent): void {
  const { metrics } = sinks;
  const domain = metrics.domainLabel(e.message.senderDomain);
  switch (e.outcome) {
    case 'delivered':
      metrics.delivered.inc({ sending_domain: domain, destination: metrics.destinationLabel(e.destination) });
      metrics.bounceWindow.record(domain, 'delivered', e.now);
      break;
    case 'deferred':
      metrics.deferred.inc({ sending_domain: domain });
      break;
    case 'bounced':
      metrics.bounced.inc({ sending_domain: domain, category: categoryOf(e) });
      metrics.bounceWindow.record(domain, 'bounced', e.now);
      break;
    case 'expired':
      metrics.expired.inc({ sending_domain: domain });
      break;
    case 'handedoff':
      metrics.handedOff.inc({ sending_domain: domain });
      break;
  }
  if (e.tls && e.outcome !== 'handedoff')
    metrics.outboundTls.inc({
      destination: metrics.destinationLabel(e.destination),
      policy: e.tls.policy,
      result: e.tls.result,
    });
  sinks.accounting()?.write(accountingRecord(e));
}
