// A SendingDomain's last hour in status.rates: open, click-through and bounce rate from the counts
// the scraper reads off the pool's relays and tracker pods. Pure; docs/tracking.md#rates defines
// each rate.
import type { SendingDomainRates } from '../api/types.ts';

/** The window of status.rates (the dashboard's "last hour" panel uses the same). */
export const RATES_WINDOW = '1h';

/** What the pool's pods counted for one domain over the window. */
export type DomainCounts = {
  /** Recipients delivered, and refused for good at delivery (the relays' final outcomes). */
  delivered: number;
  bounced: number;
  /** Hard bounces that came back after delivery (the return path). */
  asyncBounced?: number;
  /**
   * Human reads at the tracker: messages opened (the first open of each), every open pixel
   * fetched, clicks. Machine reads are never counted.
   */
  opens?: number;
  totalOpens?: number;
  clicks?: number;
};

const ratio = (n: number, d: number) => (d > 0 ? (n / d).toFixed(4) : undefined);

export function domainRates(c: DomainCounts): SendingDomainRates {
  const bounced = c.bounced + (c.asyncBounced ?? 0);
  const opens = c.opens ?? 0;
  const clicks = c.clicks ?? 0;
  // Async bounces may be of mail delivered before the window: the rate is capped as in bounce.ts.
  const attempted = c.delivered + c.bounced;
  const rates: SendingDomainRates = {
    window: RATES_WINDOW,
    delivered: c.delivered,
    bounced,
    opens,
    totalOpens: c.totalOpens ?? 0,
    clicks,
  };
  const openRate = ratio(opens, c.delivered);
  const clickThroughRate = ratio(clicks, c.delivered);
  const bounceRate = attempted > 0 ? Math.min(1, bounced / attempted).toFixed(4) : undefined;
  if (openRate !== undefined) rates.openRate = openRate;
  if (clickThroughRate !== undefined) rates.clickThroughRate = clickThroughRate;
  if (bounceRate !== undefined) rates.bounceRate = bounceRate;
  return rates;
}
