import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fairLeaseDecisionCases } from '../../../test/helpers/lease-fairness-cases.ts';
import { combinedLeaseDecision, fairLeaseDecision, type FairLeaseDecision } from './lease-fairness.ts';

test('who gets a freed pool-wide connection: room, none, or left to relays waiting below their share', async (t) => {
  for (const c of fairLeaseDecisionCases)
    await t.test(c.name, () =>
      assert.equal(
        fairLeaseDecision({
          cap: c.cap,
          held: new Map(Object.entries(c.held)),
          waiting: new Set(c.waiting),
          asker: c.asker,
        }),
        c.want,
      ),
    );
});

test('a connection under several caps: granted only if every cap grants', async (t) => {
  const cases: { name: string; decisions: FairLeaseDecision[]; want: FairLeaseDecision }[] = [
    { name: 'every cap grants', decisions: ['grant', 'grant'], want: 'grant' },
    { name: 'one cap is full', decisions: ['grant', 'full'], want: 'full' },
    { name: 'one cap yields', decisions: ['yield', 'grant'], want: 'yield' },
    { name: 'full and yield: full (the asker waits)', decisions: ['yield', 'full'], want: 'full' },
  ];
  for (const c of cases) await t.test(c.name, () => assert.equal(combinedLeaseDecision(c.decisions), c.want));
});
