// The per-SendingDomain series the dashboards and alerts read, derived from what a reconcile
// decided. Pure: the controller sets the gauges.
import type { Condition, DefaultedSendingDomain } from '../api/types.ts';
import type { StatusWrite } from '../desired/types.ts';

export type DomainLabels = { namespace: string; pool: string; sending_domain: string };

export type DomainSeries = {
  labels: DomainLabels;
  maxBounceRate: number;
  /** Absent until a rate was measured. */
  bounceRate?: number;
  /** Only for a domain with spec.returnPath (complaints arrive there); absent until measured. */
  complaintRate?: number;
  maxComplaintRate?: number;
  suspended: boolean;
  conditions: { type: string; status: string }[];
};

/**
 * The condition types exported per domain. A domain's Progressing (always the same once reconciled)
 * and Degraded (Ready's problem, or the bounce rate the rate gauges carry) add nothing to a
 * dashboard, and at 5000 domains each is another 5000 series in every scrape.
 */
const EXPORTED_CONDITIONS = new Set(['Ready', 'DKIMKeyReady', 'DNSVerified', 'Suspended']);

export function domainSeries(
  namespace: string,
  domains: DefaultedSendingDomain[],
  statuses: StatusWrite[],
): DomainSeries[] {
  const series: DomainSeries[] = [];
  for (const domain of domains) {
    const write = statuses.find((s) => s.kind === 'SendingDomain' && s.name === domain.metadata.name);
    if (!write) continue;
    const conditions = (write.status.conditions ?? []) as Condition[];
    const rate = Number(write.status.bounceRate);
    const entry: DomainSeries = {
      labels: {
        namespace,
        pool: domain.spec.poolRef.name,
        sending_domain: domain.spec.domain.toLowerCase(),
      },
      maxBounceRate: domain.spec.bouncePolicy.maxBounceRate,
      suspended: conditions.some((c) => c.type === 'Suspended' && c.status === 'True'),
      conditions: conditions
        .filter((c) => EXPORTED_CONDITIONS.has(c.type))
        .map((c) => ({ type: c.type, status: c.status })),
    };
    if (write.status.bounceRate !== undefined && Number.isFinite(rate)) entry.bounceRate = rate;
    if (domain.spec.returnPath) {
      entry.maxComplaintRate = domain.spec.bouncePolicy.maxComplaintRate;
      const complaintRate = Number(write.status.complaintRate);
      if (write.status.complaintRate !== undefined && Number.isFinite(complaintRate))
        entry.complaintRate = complaintRate;
    }
    series.push(entry);
  }
  return series;
}
