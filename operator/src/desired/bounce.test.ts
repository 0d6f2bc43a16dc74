import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUTOSUSPEND_ANNOTATION, decideSuspension } from './bounce.ts';
import type { BounceMeasurement } from './bounce.ts';
import { NOW, sendingDomain } from '../../../test/helpers/operator/fixtures.ts';
import type { SendingDomain } from '../api/types.ts';
import { withDefaults } from '../api/defaults.ts';

/** Builders receive defaulted specs: maxComplaintRate (0.003) and the rest come from the schema. */
const defaulted = (d: SendingDomain) => withDefaults(d).resource;

const policy = { maxBounceRate: 0.05, minMessages: 100, window: '1h', action: 'Suspend' as const };
const suspendedFor = (reason: string, at: string): SendingDomain['status'] => ({
  suspendedAt: '2026-01-02T01:00:00.000Z',
  conditions: [
    {
      type: 'Suspended',
      status: reason === 'resumed' ? 'False' : 'True',
      reason: reason === 'resumed' ? 'Sending' : reason,
      message: 'm',
      lastTransitionTime: at,
    },
  ],
});

const autosuspended = (d: SendingDomain): SendingDomain => ({
  ...d,
  metadata: { ...d.metadata, annotations: { [AUTOSUSPEND_ANNOTATION]: 'bounce rate 60.00% exceeds' } },
});

test('bounce-rate decisions', async (t) => {
  const cases: {
    name: string;
    domain: SendingDomain;
    m?: BounceMeasurement;
    suspended: boolean;
    suspendNow: boolean;
    reason: string;
    alert?: boolean;
    resumed?: boolean;
  }[] = [
    {
      name: 'no measurement: keep sending',
      domain: sendingDomain('a.com', { bouncePolicy: policy }),
      suspended: false,
      suspendNow: false,
      reason: 'NoMeasurement',
    },
    {
      name: 'too few messages: not judged',
      domain: sendingDomain('a.com', { bouncePolicy: policy }),
      m: { bounced: 50, total: 99 },
      suspended: false,
      suspendNow: false,
      reason: 'NotEnoughMessages',
    },
    {
      name: 'rate at the limit: fine',
      domain: sendingDomain('a.com', { bouncePolicy: policy }),
      m: { bounced: 5, total: 100 },
      suspended: false,
      suspendNow: false,
      reason: 'BounceRateAcceptable',
    },
    {
      name: 'rate over the limit with Suspend: suspend now',
      domain: sendingDomain('a.com', { bouncePolicy: policy }),
      m: { bounced: 6, total: 100 },
      suspended: true,
      suspendNow: true,
      reason: 'BounceRateExceeded',
    },
    {
      name: 'rate over the limit with Alert: report only',
      domain: sendingDomain('a.com', { bouncePolicy: { ...policy, action: 'Alert' } }),
      m: { bounced: 60, total: 100 },
      suspended: false,
      suspendNow: false,
      reason: 'BounceRateExceeded',
      alert: true,
    },
    {
      name: 'spec.suspend holds mail whatever the rate',
      domain: sendingDomain('a.com', { suspend: true }),
      m: { bounced: 0, total: 1000 },
      suspended: true,
      suspendNow: false,
      reason: 'SuspendedBySpec',
    },
    {
      name: 'auto-suspended stays suspended while spec.suspend is true',
      domain: autosuspended(sendingDomain('a.com', { suspend: true, bouncePolicy: policy })),
      suspended: true,
      suspendNow: false,
      reason: 'BounceRateExceeded',
    },
    {
      name: 'resumed within the window: cool-down, no new suspension',
      domain: {
        ...sendingDomain('a.com', { bouncePolicy: policy }),
        status: suspendedFor('resumed', '2026-01-02T02:30:00.000Z'),
      },
      m: { bounced: 60, total: 100 },
      suspended: false,
      suspendNow: false,
      reason: 'BounceRateExceeded',
      alert: true,
    },
    {
      name: 'the pass that sees spec.suspend set back to false resumes (cool-down starts)',
      domain: {
        ...autosuspended(sendingDomain('a.com', { bouncePolicy: policy })),
        status: suspendedFor('BounceRateExceeded', '2026-01-02T01:00:00.000Z'),
      },
      m: { bounced: 60, total: 100 },
      suspended: false,
      suspendNow: false,
      reason: 'BounceRateExceeded',
      alert: true,
      resumed: true,
    },
    {
      name: 'a suspension the status has not caught up with is not mistaken for a manual one',
      domain: {
        ...autosuspended(sendingDomain('a.com', { suspend: true, bouncePolicy: policy })),
        status: suspendedFor('resumed', '2026-01-01T00:00:00.000Z'),
      },
      suspended: true,
      suspendNow: false,
      reason: 'BounceRateExceeded',
    },
    {
      name: 'resumed longer than a window ago: suspend again',
      domain: {
        ...sendingDomain('a.com', { bouncePolicy: policy }),
        status: suspendedFor('resumed', '2026-01-02T01:30:00.000Z'),
      },
      m: { bounced: 60, total: 100 },
      suspended: true,
      suspendNow: true,
      reason: 'BounceRateExceeded',
    },
    {
      name: 'bounces after delivery (through the return path) count in the bounce rate',
      domain: sendingDomain('a.com', { bouncePolicy: policy }),
      m: { bounced: 2, total: 100, asyncBounced: 4 },
      suspended: true,
      suspendNow: true,
      reason: 'BounceRateExceeded',
    },
    {
      name: 'a complaint rate over maxComplaintRate (default 0.3%) suspends even with few bounces',
      domain: sendingDomain('a.com', { bouncePolicy: policy }),
      m: { bounced: 1, total: 1000, complaints: 4 },
      suspended: true,
      suspendNow: true,
      reason: 'ComplaintRateExceeded',
    },
    {
      name: 'a complaint rate at maxComplaintRate is fine',
      domain: sendingDomain('a.com', { bouncePolicy: policy }),
      m: { bounced: 1, total: 1000, complaints: 3 },
      suspended: false,
      suspendNow: false,
      reason: 'BounceRateAcceptable',
    },
    {
      name: 'a complaint rate over a stricter policy with Alert: report only',
      domain: sendingDomain('a.com', {
        bouncePolicy: { ...policy, maxComplaintRate: 0.001, action: 'Alert' },
      }),
      m: { bounced: 0, total: 1000, complaints: 2 },
      suspended: false,
      suspendNow: false,
      reason: 'ComplaintRateExceeded',
      alert: true,
    },
    {
      name: 'an automatic suspension for complaints keeps saying so',
      domain: {
        ...sendingDomain('a.com', { bouncePolicy: policy, suspend: true }),
        metadata: {
          name: 'a-com',
          annotations: { [AUTOSUSPEND_ANNOTATION]: 'complaint rate 0.40% exceeds maxComplaintRate 0.30%' },
        },
      },
      suspended: true,
      suspendNow: false,
      reason: 'ComplaintRateExceeded',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const d = decideSuspension(defaulted(c.domain), c.m, NOW);
      assert.equal(d.suspended, c.suspended);
      assert.equal(d.suspendNow, c.suspendNow);
      assert.equal(d.reason, c.reason);
      assert.equal(d.alert, c.alert ?? false);
      assert.equal(d.resumed, c.resumed ?? false);
    });
  }
});

test('the suspension message spells out the measured rate', () => {
  const d = decideSuspension(
    defaulted(sendingDomain('a.com', { bouncePolicy: policy })),
    { bounced: 12, total: 200 },
    NOW,
  );
  assert.match(d.message, /6\.00% \(12 of 200 recipients in the last 1h\) exceeds maxBounceRate 5\.00%/);
  assert.equal(d.rate, 0.06);
});

test('the message says which rate tripped, with async bounces and complaints counted', () => {
  const domain = defaulted(sendingDomain('a.com', { bouncePolicy: policy }));
  const complaints = decideSuspension(domain, { bounced: 0, total: 1000, complaints: 5 }, NOW);
  assert.equal(
    complaints.message,
    'complaint rate 0.50% (5 of 1000 recipients in the last 1h) exceeds maxComplaintRate 0.30%: suspended',
  );
  assert.equal(complaints.complaintRate, 0.005);
  const bounces = decideSuspension(domain, { bounced: 3, total: 100, asyncBounced: 4 }, NOW);
  assert.equal(
    bounces.message,
    'bounce rate 7.00% (7 of 100 recipients in the last 1h, 4 of them bounced after delivery) exceeds maxBounceRate 5.00%: suspended',
  );
  assert.equal(bounces.rate, 0.07);
});
