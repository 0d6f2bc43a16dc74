import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeShare, integerRate, poolNumbers } from './share.ts';
import type { RateLimitSpec } from '../api/types.ts';

const spec = (s: Partial<RateLimitSpec>): RateLimitSpec => ({ poolRef: { name: 'p' }, ...s });

test('share of a rate limit per relay', async (t) => {
  const cases: {
    name: string;
    spec: RateLimitSpec;
    ready: number;
    rate?: { messages: number; per: string };
    burst?: number;
    effective?: string;
    sharedBy: number;
    maxConnections?: number;
  }[] = [
    {
      name: 'PerRelay keeps the numbers',
      spec: spec({ rate: { messages: 20, per: 'Second' }, scope: 'PerRelay' }),
      ready: 3,
      rate: { messages: 20, per: 'second' },
      burst: 20,
      effective: '20/s',
      sharedBy: 1,
    },
    {
      name: 'Pool divides among ready relays',
      spec: spec({ rate: { messages: 20, per: 'Second' }, burst: 40, scope: 'Pool' }),
      ready: 2,
      rate: { messages: 10, per: 'second' },
      burst: 20,
      effective: '10/s',
      sharedBy: 2,
    },
    {
      name: 'Pool share that is not whole moves to a longer period',
      spec: spec({ rate: { messages: 20, per: 'Second' }, scope: 'Pool' }),
      ready: 3,
      rate: { messages: 400, per: 'minute' },
      burst: 6,
      effective: '6.67/s',
      sharedBy: 3,
    },
    {
      name: 'no ready relay counts as one',
      spec: spec({ rate: { messages: 20, per: 'Second' }, scope: 'Pool' }),
      ready: 0,
      rate: { messages: 20, per: 'second' },
      burst: 20,
      effective: '20/s',
      sharedBy: 1,
    },
    {
      name: 'connections are shared too, at least one each',
      spec: spec({ maxConnections: 5, scope: 'Pool' }),
      ready: 10,
      sharedBy: 10,
      maxConnections: 1,
    },
    {
      name: 'hourly rate shared by 7',
      spec: spec({ rate: { messages: 3000, per: 'Hour' }, scope: 'Pool' }),
      ready: 7,
      rate: { messages: 428, per: 'hour' },
      burst: 1,
      effective: '428.57/h',
      sharedBy: 7,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const share = computeShare(c.spec, c.ready);
      assert.deepEqual(share.rate, c.rate);
      assert.equal(share.burst, c.burst);
      assert.equal(share.effectiveRate, c.effective);
      assert.equal(share.sharedBy, c.sharedBy);
      assert.equal(share.maxConnections, c.maxConnections);
    });
  }
});

test('a pool never exceeds its limit when summing shares', () => {
  for (let relays = 1; relays <= 50; relays++) {
    const r = integerRate(20 / relays, 'Second');
    const perSecond = r.messages / { Second: 1, Minute: 60, Hour: 3600, Day: 86400 }[r.per];
    assert.ok(perSecond * relays <= 20 + 1e-9 || r.messages === 1, `${relays} relays: ${JSON.stringify(r)}`);
  }
});

test('pool-wide numbers for the shared store', async (t) => {
  const cases: { name: string; spec: RateLimitSpec; pool: ReturnType<typeof poolNumbers> }[] = [
    {
      name: 'a Pool limit keeps its whole rate and burst',
      spec: spec({ rate: { messages: 30, per: 'Second' }, burst: 5, scope: 'Pool' }),
      pool: { rate: { messages: 30, per: 'second' }, burst: 5 },
    },
    {
      name: 'without a burst, one second of the rate (at least 1)',
      spec: spec({ rate: { messages: 20, per: 'Minute' }, scope: 'Pool' }),
      pool: { rate: { messages: 20, per: 'minute' }, burst: 1 },
    },
    {
      name: 'a PerRelay limit has no pool-wide numbers',
      spec: spec({ rate: { messages: 30, per: 'Second' }, scope: 'PerRelay' }),
      pool: undefined,
    },
    {
      name: 'a Reject limit is counted pool-wide too (at RCPT TO, in the store)',
      spec: spec({ rate: { messages: 30, per: 'Second' }, burst: 30, scope: 'Pool', onExceed: 'Reject' }),
      pool: { rate: { messages: 30, per: 'second' }, burst: 30 },
    },
    {
      name: 'a connection cap without a rate is leased pool-wide',
      spec: spec({ maxConnections: 6, scope: 'Pool' }),
      pool: { maxConnections: 6 },
    },
    {
      name: 'a rate and a connection cap: both pool-wide',
      spec: spec({ rate: { messages: 30, per: 'Second' }, burst: 5, maxConnections: 4, scope: 'Pool' }),
      pool: { rate: { messages: 30, per: 'second' }, burst: 5, maxConnections: 4 },
    },
    {
      name: 'a PerRelay connection cap has none',
      spec: spec({ maxConnections: 6, scope: 'PerRelay' }),
      pool: undefined,
    },
  ];
  for (const c of cases) await t.test(c.name, () => assert.deepEqual(poolNumbers(c.spec), c.pool));
});
