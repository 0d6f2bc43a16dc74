// status.rates from a domain's counts: each rate's numerator and denominator (docs/tracking.md#rates).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { domainRates, type DomainCounts } from './rates.ts';
import { desiredState } from './state.ts';
import {
  fakeGenerators,
  observed,
  relayPool,
  secret,
  secrets,
  sendingDomain,
  testKeys,
} from '../../../test/helpers/operator/fixtures.ts';

const cases: [string, DomainCounts, Record<string, unknown>][] = [
  [
    'opens and clicks per delivered recipient, bounces per attempted one',
    { delivered: 80, bounced: 20, opens: 40, totalOpens: 55, clicks: 10 },
    {
      delivered: 80,
      bounced: 20,
      opens: 40,
      totalOpens: 55,
      clicks: 10,
      openRate: '0.5000',
      clickThroughRate: '0.1250',
      bounceRate: '0.2000',
    },
  ],
  [
    'a bounce after delivery counts in bounced and in the rate, not in its denominator',
    { delivered: 9, bounced: 1, asyncBounced: 1 },
    {
      delivered: 9,
      bounced: 2,
      opens: 0,
      totalOpens: 0,
      clicks: 0,
      openRate: '0.0000',
      clickThroughRate: '0.0000',
      bounceRate: '0.2000',
    },
  ],
  [
    'a reader who opens twice counts once in opens and the rate, twice in totalOpens',
    { delivered: 2, bounced: 0, opens: 1, totalOpens: 2 },
    {
      delivered: 2,
      bounced: 0,
      opens: 1,
      totalOpens: 2,
      clicks: 0,
      openRate: '0.5000',
      clickThroughRate: '0.0000',
      bounceRate: '0.0000',
    },
  ],
  [
    'async bounces of mail delivered before the window: the bounce rate stops at 1',
    { delivered: 0, bounced: 1, asyncBounced: 5 },
    { delivered: 0, bounced: 6, opens: 0, totalOpens: 0, clicks: 0, bounceRate: '1.0000' },
  ],
  [
    'nothing sent: counts only, no rate over zero',
    { delivered: 0, bounced: 0, opens: 2 },
    { delivered: 0, bounced: 0, opens: 2, totalOpens: 0, clicks: 0 },
  ],
];

for (const [name, counts, expected] of cases)
  test(name, () => assert.deepEqual(domainRates(counts), { window: '1h', ...expected }));

test("the scraped counts become the domain's status.rates; none scraped, no rates", () => {
  const domain = sendingDomain('news.example.com');
  const keys = secrets(
    secret('news-example-com-dkim-mailfleet', { 'dkim.key': testKeys()['rsa-sha256'] ?? '' }),
  );
  const statusOf = (rates?: Map<string, DomainCounts>) =>
    desiredState(
      observed({ pool: relayPool(), domains: [domain], secrets: keys, ...(rates ? { rates } : {}) }),
      fakeGenerators(),
    ).statuses.find((s) => s.kind === 'SendingDomain')?.status as { rates?: Record<string, unknown> };
  const measured = statusOf(
    new Map([['news-example-com', { delivered: 4, bounced: 1, opens: 2, clicks: 1 }]]),
  );
  assert.equal(measured.rates?.openRate, '0.5000');
  assert.equal(measured.rates?.clickThroughRate, '0.2500');
  assert.equal(measured.rates?.bounceRate, '0.2000');
  assert.equal(statusOf().rates, undefined);
});
