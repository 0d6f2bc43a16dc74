// The fairness rule for pool-wide connection leases as a table, run through the pure decision
// (relay/src/shared-state/lease-fairness.test.ts) and through the store's Lua script on a real
// redis-server (test/integration/relay-pool-connection-fairness.test.ts), so the two cannot drift.
import type { FairLeaseDecision } from '../../relay/src/shared-state/lease-fairness.ts';

export interface FairLeaseCase {
  name: string;
  cap: number;
  /** Leases held per relay. */
  held: Record<string, number>;
  /** Relays waiting for room. */
  waiting: string[];
  asker: string;
  want: FairLeaseDecision;
}

export const fairLeaseDecisionCases: readonly FairLeaseCase[] = [
  { name: 'an empty pool', cap: 4, held: {}, waiting: [], asker: 'a', want: 'grant' },
  {
    name: 'the cap is reached',
    cap: 4,
    held: { a: 2, b: 1, c: 1 },
    waiting: [],
    asker: 'b',
    want: 'full',
  },
  {
    name: 'nobody waits: the asker takes the whole cap',
    cap: 4,
    held: { a: 3 },
    waiting: [],
    asker: 'a',
    want: 'grant',
  },
  {
    name: 'room freed while two relays wait: the one holding 3 of 4 yields it',
    cap: 4,
    held: { a: 3 },
    waiting: ['b', 'c'],
    asker: 'a',
    want: 'yield',
  },
  {
    name: 'room freed: a waiting relay holding nothing takes it',
    cap: 4,
    held: { a: 3 },
    waiting: ['b', 'c'],
    asker: 'b',
    want: 'grant',
  },
  {
    name: 'a relay that never waited, holding nothing, is below its share',
    cap: 4,
    held: { a: 3 },
    waiting: ['b'],
    asker: 'c',
    want: 'grant',
  },
  {
    name: 'at its fair share (cap 4 over 3 relays: 2) while one waits: yields',
    cap: 4,
    held: { a: 2, b: 1 },
    waiting: ['c'],
    asker: 'a',
    want: 'yield',
  },
  {
    name: 'below its fair share while another waits: granted',
    cap: 4,
    held: { a: 2, b: 1 },
    waiting: ['c'],
    asker: 'b',
    want: 'grant',
  },
  {
    name: 'the asker is the only waiter: its own entry does not hold it back',
    cap: 4,
    held: { a: 3 },
    waiting: ['a'],
    asker: 'a',
    want: 'grant',
  },
  {
    name: 'two relays, cap 3: the share rounds up to 2',
    cap: 3,
    held: { a: 1 },
    waiting: ['b'],
    asker: 'a',
    want: 'grant',
  },
  {
    name: 'two relays, cap 3: holding 2 while the other waits, it yields',
    cap: 3,
    held: { a: 2 },
    waiting: ['b'],
    asker: 'a',
    want: 'yield',
  },
  {
    name: 'cap 1, free, another relay waiting: the asker holding nothing is below its share',
    cap: 1,
    held: {},
    waiting: ['b'],
    asker: 'a',
    want: 'grant',
  },
  {
    name: 'more relays than the cap: a share of 1, a relay holding 1 yields',
    cap: 2,
    held: { a: 1 },
    waiting: ['b', 'c'],
    asker: 'a',
    want: 'yield',
  },
];
