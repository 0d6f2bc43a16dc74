// The per-SendingDomain series the dashboards and alerts read, derived from what a reconcile
// decided. Pure: the controller sets the gauges.
import type { Condition, SendingDomain } from '../api/types.ts';
import type { StatusWrite } from '../desired/types.ts';

export type DomainLabels = { namespace: string; pool: string; sending_domain: string };

export type DomainSeries = {
  labels: DomainLabels;
  maxBounceRate: number;
  /** Absent until a rate was measured. */
  bounceRate?: number;
  suspended: boolean;
  conditions: { type: string; status: string }[];
};

export function domainSeries(
  namespace: string,
  domains: SendingDomain[],
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
        pool: domain.spec.poolRef?.name ?? '',
        sending_domain: domain.spec.domain.toLowerCase(),
      },
      maxBounceRate: domain.spec.bouncePolicy?.maxBounceRate ?? 0.05,
      suspended: conditions.some((c) => c.type === 'Suspended' && c.status === 'True'),
      conditions: conditions.map((c) => ({ type: c.type, status: c.status })),
    };
    if (write.status.bounceRate !== undefined && Number.isFinite(rate)) entry.bounceRate = rate;
    series.push(entry);
  }
  return series;
}
