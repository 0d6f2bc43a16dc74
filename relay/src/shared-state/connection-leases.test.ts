import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../config/validate.ts';
import { Shaper } from '../shaping/shaper.ts';
import type { ConnectionGate } from '../delivery/smtp-options.ts';
import {
  leaseDecision,
  shapingPool,
  type LeasedLimit,
  type PoolConnectionLeases,
} from './connection-leases.ts';

const leased = (share: number, poolMax = 4): LeasedLimit => ({
  id: `l${share}\0d`,
  limit: `l${share}`,
  destination: 'd',
  poolMax,
  share,
});

test('whether a connection may open: the store while it answers, else the relay’s share', async (t) => {
  const cases: {
    name: string;
    answer: 'room' | 'full' | 'unavailable';
    limits: LeasedLimit[];
    held: number[];
    want: 'store' | 'fallback' | 'wait';
  }[] = [
    { name: 'the store has room', answer: 'room', limits: [leased(1)], held: [3], want: 'store' },
    {
      name: 'the store is full, whatever the share leaves',
      answer: 'full',
      limits: [leased(2)],
      held: [0],
      want: 'wait',
    },
    {
      name: 'store down, share not used up',
      answer: 'unavailable',
      limits: [leased(2)],
      held: [1],
      want: 'fallback',
    },
    {
      name: 'store down, share used up',
      answer: 'unavailable',
      limits: [leased(2)],
      held: [2],
      want: 'wait',
    },
    {
      name: 'store down, nothing held yet',
      answer: 'unavailable',
      limits: [leased(1)],
      held: [],
      want: 'fallback',
    },
    {
      name: 'store down, one of two limits used up',
      answer: 'unavailable',
      limits: [leased(3), leased(1)],
      held: [0, 1],
      want: 'wait',
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => assert.equal(leaseDecision(c.answer, c.limits, c.held), c.want));
});

/** Leases that record the limits each gate was made for (the gate is not asked here). */
class RecordingLeases implements PoolConnectionLeases {
  available = true;
  gates: (readonly LeasedLimit[])[] = [];
  gate(limits: readonly LeasedLimit[]): ConnectionGate {
    this.gates.push(limits);
    return { acquire: () => Promise.resolve(undefined), withdraw: () => undefined };
  }
}

function shaperOf(rateLimits: unknown[]): Shaper {
  const result = validateConfig({ rateLimits });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return new Shaper(result.config.rateLimits, result.config.adaptiveBackoff);
}

const traits = {
  sender: 'a@example.com',
  senderDomain: 'example.com',
  recipientDomain: 'conn.test',
  mxHosts: [],
};
const capped = { name: 'conns', match: { recipientDomains: ['conn.test'] }, maxConnections: 1 };

test('a class’s outbound pool settings: the pool’s cap and a gate only for pool-wide caps with a store', async (t) => {
  const cases: {
    name: string;
    limits: unknown[];
    store: boolean;
    maxConnections: number | undefined;
    gate: LeasedLimit[] | undefined;
  }[] = [
    {
      name: 'a pool-wide cap with a store: up to the pool’s number, gated',
      limits: [{ ...capped, maxMessagesPerConnection: 5, pool: { maxConnections: 4 } }],
      store: true,
      maxConnections: 4,
      gate: [{ id: 'conns\0conn.test', limit: 'conns', destination: 'conn.test', poolMax: 4, share: 1 }],
    },
    {
      name: 'a pool-wide cap without a store: the share, no gate',
      limits: [{ ...capped, pool: { maxConnections: 4 } }],
      store: false,
      maxConnections: 1,
      gate: undefined,
    },
    {
      name: 'a share-only cap with a store: the share, no gate',
      limits: [capped],
      store: true,
      maxConnections: 1,
      gate: undefined,
    },
    {
      name: 'a pool-wide cap and a tighter per-relay cap: the tighter one bounds the pool',
      limits: [
        { ...capped, pool: { maxConnections: 4 } },
        { name: 'own', match: { recipientDomains: ['conn.test'] }, maxConnections: 2 },
      ],
      store: true,
      maxConnections: 2,
      gate: [{ id: 'conns\0conn.test', limit: 'conns', destination: 'conn.test', poolMax: 4, share: 1 }],
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const cls = shaperOf(c.limits).classify(traits);
      const leases = new RecordingLeases();
      const pool = shapingPool(cls, c.store ? leases : undefined);
      assert.equal(pool.maxConnections, c.maxConnections);
      assert.equal(pool.gate !== undefined, c.gate !== undefined);
      assert.deepEqual(leases.gates[0], c.gate);
    });
});

test('the scheduler’s connection cap: the pool’s number while the store leases, the share otherwise', async (t) => {
  const shaper = shaperOf([{ ...capped, pool: { maxConnections: 3 } }]);
  const cls = shaper.classify(traits);
  const cases = [
    { name: 'store leasing, 2 in flight', storeLeases: true, inflight: 2, blocked: false },
    { name: 'store leasing, 3 in flight', storeLeases: true, inflight: 3, blocked: true },
    { name: 'store down, 0 in flight', storeLeases: false, inflight: 0, blocked: false },
    { name: 'store down, 1 in flight', storeLeases: false, inflight: 1, blocked: true },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const s = shaperOf([{ ...capped, pool: { maxConnections: 3 } }]);
      for (let i = 0; i < c.inflight; i++) s.started(cls);
      assert.equal(s.connectionBlock(cls, c.storeLeases) !== undefined, c.blocked);
      assert.equal(s.admit(cls, 0, false, c.storeLeases).admitted, !c.blocked);
    });
});
