import { test } from 'node:test';
import assert from 'node:assert/strict';
import { domainSeries } from './domain-series.ts';
import { sendingDomain } from '../../../test/helpers/operator/fixtures.ts';
import type { StatusWrite } from '../desired/types.ts';
import { withDefaults } from '../api/defaults.ts';
import type { SendingDomain } from '../api/types.ts';

/** The controller passes defaulted domains: the default limits below come from the schema. */
const defaulted = (...domains: SendingDomain[]) => domains.map((d) => withDefaults(d).resource);

const condition = (type: string, status: string) => ({
  type,
  status,
  reason: 'R',
  message: 'm',
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

test('sending-domain series from a reconcile', async (t) => {
  const suspendedDomain = sendingDomain('Bounce.Example', {
    bouncePolicy: { maxBounceRate: 0.02, action: 'Suspend' },
  });
  const quiet = sendingDomain('quiet.example');
  const statuses: StatusWrite[] = [
    {
      kind: 'SendingDomain',
      name: 'Bounce-Example',
      status: {
        bounceRate: '0.4000',
        conditions: [
          condition('Suspended', 'True'),
          condition('Progressing', 'False'),
          condition('DKIMKeyReady', 'True'),
          condition('Degraded', 'True'),
        ],
      },
    },
    {
      kind: 'SendingDomain',
      name: 'quiet-example',
      status: { conditions: [condition('Suspended', 'False')] },
    },
  ];
  const [bounce, calm, ...rest] = domainSeries('mail', defaulted(suspendedDomain, quiet), statuses);
  await t.test('labels carry namespace, pool and the domain as the relays label it', () => {
    assert.deepEqual(bounce?.labels, {
      namespace: 'mail',
      pool: 'transactional',
      sending_domain: 'bounce.example',
    });
  });
  await t.test('measured rate, policy, suspension and the conditions a dashboard reads', () => {
    assert.equal(bounce?.bounceRate, 0.4);
    assert.equal(bounce?.maxBounceRate, 0.02);
    assert.equal(bounce?.suspended, true);
    assert.deepEqual(bounce?.conditions, [
      { type: 'Suspended', status: 'True' },
      { type: 'DKIMKeyReady', status: 'True' },
    ]);
  });
  await t.test('no measurement: no rate, the default policy limit', () => {
    assert.equal(calm?.bounceRate, undefined);
    assert.equal(calm?.maxBounceRate, 0.05);
    assert.equal(calm?.suspended, false);
  });
  await t.test('a domain without a status write has no series', () => assert.equal(rest.length, 0));
});

test('complaint-rate series: only for a domain with a return path', async (t) => {
  const withReturnPath = sendingDomain('news.example', {
    returnPath: 'fbl.news.example',
    bouncePolicy: { maxComplaintRate: 0.001 },
  });
  const measuredLater = sendingDomain('later.example', { returnPath: 'bounces.later.example' });
  const without = sendingDomain('plain.example');
  const statuses: StatusWrite[] = [
    {
      kind: 'SendingDomain',
      name: 'news-example',
      status: { bounceRate: '0.0100', complaintRate: '0.0250' },
    },
    { kind: 'SendingDomain', name: 'later-example', status: {} },
    { kind: 'SendingDomain', name: 'plain-example', status: { bounceRate: '0.0100' } },
  ];
  const [news, later, plain] = domainSeries(
    'mail',
    defaulted(withReturnPath, measuredLater, without),
    statuses,
  );
  await t.test('measured complaint rate and its policy limit', () => {
    assert.equal(news?.complaintRate, 0.025);
    assert.equal(news?.maxComplaintRate, 0.001);
  });
  await t.test('not measured yet: the default limit (0.3%) and no rate', () => {
    assert.equal(later?.complaintRate, undefined);
    assert.equal(later?.maxComplaintRate, 0.003);
  });
  await t.test('no return path, no complaints can arrive: neither series', () => {
    assert.equal(plain?.complaintRate, undefined);
    assert.equal(plain?.maxComplaintRate, undefined);
  });
});
