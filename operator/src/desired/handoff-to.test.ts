import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { V1NetworkPolicy, V1NetworkPolicyPeer } from '@kubernetes/client-node';
import { desiredState } from './state.ts';
import {
  evacuatesInto,
  evacuatingInto,
  evacuationSecretSource,
  evacuationTarget,
  handOffProblem,
} from './handoff-to.ts';
import type { HandOffTarget } from './handoff-to.ts';
import type { Desired, Observed } from './types.ts';
import { findCondition } from '../api/conditions.ts';
import type { Condition, RelayPool } from '../api/types.ts';
import { fakeGenerators, observed, relayPool } from '../../../test/helpers/operator/fixtures.ts';

const DELETED_AT = '2026-12-05T20:00:00Z';
const AT = Date.parse(DELETED_AT) + 3000;

/** A pool named `name`; `to` its deletionHandOffTo; deleted when `deleting`. */
function pool(
  o: {
    name?: string;
    to?: string;
    deleting?: boolean;
    policy?: 'Drain' | 'Discard';
    namespace?: string;
  } = {},
): RelayPool {
  const p = relayPool(
    {
      ...(o.to ? { deletionHandOffTo: o.to } : {}),
      ...(o.policy ? { deletionPolicy: o.policy } : {}),
    },
    o.name ?? 'old',
  );
  p.metadata.finalizers = ['mailfleet.dev/drain'];
  if (o.deleting) p.metadata.deletionTimestamp = DELETED_AT as unknown as Date;
  if (o.namespace) p.metadata.namespace = o.namespace;
  return p;
}
const target = (o: { deleting?: boolean; ready?: number; namespace?: string } = {}): HandOffTarget => ({
  pool: pool({
    name: 'new',
    ...(o.deleting ? { deleting: true } : {}),
    ...(o.namespace ? { namespace: o.namespace } : {}),
  }),
  readyRelays: o.ready ?? 2,
});

test('whether a pool hands its queue to the pool it names, and why not', async (t) => {
  const cases: {
    name: string;
    source: RelayPool;
    target: HandOffTarget | undefined;
    evacuates: boolean;
    problem?: RegExp;
  }[] = [
    {
      name: 'deleted, naming a live pool with ready relays: hands off',
      source: pool({ to: 'new', deleting: true }),
      target: target(),
      evacuates: true,
    },
    {
      name: 'named but not deleted: delivers (the Secret is mounted, nothing is sent)',
      source: pool({ to: 'new' }),
      target: target(),
      evacuates: false,
    },
    {
      name: 'deleted, naming none: delivers, no problem to report',
      source: pool({ deleting: true }),
      target: undefined,
      evacuates: false,
    },
    {
      name: 'deleted, the named pool does not exist: delivers, HandOffTargetMissing',
      source: pool({ to: 'new', deleting: true }),
      target: { readyRelays: 0 },
      evacuates: false,
      problem: /pool new does not exist in namespace mail/,
    },
    {
      name: 'deleted, the named pool is being deleted itself: delivers (no queue passed back and forth)',
      source: pool({ to: 'new', deleting: true }),
      target: target({ deleting: true }),
      evacuates: false,
      problem: /pool new is being deleted itself/,
    },
    {
      name: 'deleted, the named pool has no ready relay: the config names it (the relay retries), the status says so',
      source: pool({ to: 'new', deleting: true }),
      target: target({ ready: 0 }),
      evacuates: true,
      problem: /pool new has no ready relay/,
    },
    {
      name: 'naming itself (the API refuses it): never',
      source: pool({ name: 'new', to: 'new', deleting: true }),
      target: target(),
      evacuates: false,
      problem: /names this pool itself/,
    },
    {
      name: 'a pool of another namespace with the same name: never',
      source: pool({ to: 'new', deleting: true }),
      target: target({ namespace: 'other' }),
      evacuates: false,
    },
    {
      name: 'Discard (the API refuses it with a target): never, nothing to report',
      source: pool({ to: 'new', deleting: true, policy: 'Discard' }),
      target: target(),
      evacuates: false,
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      assert.equal(evacuatesInto(c.source, c.target?.pool), c.evacuates);
      const to = evacuationTarget(c.source, c.target?.pool);
      assert.deepEqual(
        to,
        c.evacuates
          ? { service: 'new-headless.mail.svc', peers: [], secretFile: 'handoff-to/secret' }
          : undefined,
      );
      if (c.target?.pool)
        assert.deepEqual(evacuatingInto(c.target.pool, [c.source]), c.evacuates ? ['old'] : []);
      const problem = handOffProblem(c.source, c.target);
      if (c.problem) assert.match(problem ?? '', c.problem);
      else assert.equal(problem, undefined);
    });
});

test("the named pool's handoff Secret is mounted from when the field is set, optional, never for Discard", async (t) => {
  const cases: { name: string; source: RelayPool; secret?: string }[] = [
    { name: 'no field: nothing more', source: pool() },
    { name: 'field set on a live pool: mounted already', source: pool({ to: 'new' }), secret: 'new-handoff' },
    {
      name: 'the same once deleted (no pod template change)',
      source: pool({ to: 'new', deleting: true }),
      secret: 'new-handoff',
    },
    { name: 'Discard: nothing', source: pool({ to: 'new', policy: 'Discard' }) },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const source = evacuationSecretSource(c.source);
      if (!c.secret) return assert.equal(source, undefined);
      assert.deepEqual(source, {
        secret: { name: c.secret, optional: true, items: [{ key: 'secret', path: 'handoff-to/secret' }] },
      });
    });
});

// The whole decision, as a reconcile makes it, for the pool being deleted ("old") and the pool it
// names ("new").
const statusOf = (d: Desired, name: string) =>
  d.statuses.find((s) => s.kind === 'RelayPool' && s.name === name)?.status;
const deletingCondition = (d: Desired, name: string) =>
  findCondition(statusOf(d, name)?.conditions as Condition[], 'Deleting');
const relayConfig = (d: Desired) =>
  parse(
    (d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> }).data['relay.yaml'] ??
      '',
  ) as { handoff: { evacuateTo?: { service?: string; secretFile: string } }; intake?: { open: boolean } };
const template = (d: Desired) =>
  JSON.stringify(
    (d.apply.find((o) => o.kind === 'Deployment') as { spec: { template: unknown } }).spec.template,
  );
const policy = (d: Desired) => d.apply.find((o) => o.kind === 'NetworkPolicy') as V1NetworkPolicy;
const selects = (peers: V1NetworkPolicyPeer[] | undefined, name: string) =>
  (peers ?? []).some((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/instance'] === name);
const handoffIngress = (d: Desired) =>
  // The wire name is `from`; the client library's model calls it `_from`.
  (
    (policy(d).spec?.ingress ?? []).find((r) => r.ports?.some((p) => p.port === 2526)) as
      { from?: V1NetworkPolicyPeer[] } | undefined
  )?.from;
const handoffEgressTo = (d: Desired) =>
  (policy(d).spec?.egress ?? [])
    .filter((r) => r.ports?.some((p) => p.port === 2526))
    .flatMap((r) => r.to ?? []);

const oldRelays = (queued: number[]) =>
  queued.map((n, i) => ({ pod: `old-${i}`, queued: n, scrapedAt: AT, intakeClosedAt: AT - 1000 }));
const decideOld = (source: RelayPool, handOffTarget: HandOffTarget | undefined, queued: number[]) =>
  desiredState(
    observed({
      poolName: 'old',
      pool: source,
      relayQueues: oldRelays(queued),
      ...(handOffTarget ? { handOffTarget } : {}),
    } as Partial<Observed>),
    fakeGenerators(),
  );

test('a pool deleted with a target: the relay config names the target, its egress reaches it, status says HandingOff', () => {
  const live = decideOld(pool({ to: 'new' }), target(), []);
  const deleting = decideOld(pool({ to: 'new', deleting: true }), target(), [300, 200]);
  assert.equal(relayConfig(live).handoff.evacuateTo, undefined, 'a live pool delivers');
  assert.deepEqual(relayConfig(deleting).handoff.evacuateTo, {
    service: 'new-headless.mail.svc',
    peers: [],
    secretFile: 'handoff-to/secret',
  });
  assert.deepEqual(relayConfig(deleting).intake, { open: false });
  assert.equal(template(deleting), template(live), 'the deletion does not roll the relays');
  assert.ok(!selects(handoffEgressTo(live), 'new'), 'no egress to the target while live');
  assert.ok(selects(handoffEgressTo(deleting), 'new'), 'egress to the target while handing off');
  const c = deletingCondition(deleting, 'old');
  assert.equal(c?.reason, 'HandingOff');
  assert.match(c?.message ?? '', /hand their queues to the relays of pool new/);
  assert.match(c?.message ?? '', /500 delivery jobs queued on 2 relays/);
  assert.match(
    c?.message ?? '',
    /"deletionPolicy":"Discard","deletionHandOffTo":null/,
    'the escape the API accepts',
  );
  assert.equal(statusOf(deleting, 'old')?.queuedJobs, 500);
  assert.equal(deleting.finalizer, undefined);
});

test('the target named by a missing pool: HandOffTargetMissing, the relays deliver; once it exists they hand off; empty queues end the deletion', () => {
  const source = pool({ to: 'new', deleting: true });
  const missing = decideOld(source, { readyRelays: 0 }, [40]);
  assert.equal(deletingCondition(missing, 'old')?.reason, 'HandOffTargetMissing');
  assert.match(
    deletingCondition(missing, 'old')?.message ?? '',
    /pool new does not exist.*deliver it themselves/,
  );
  assert.equal(relayConfig(missing).handoff.evacuateTo, undefined, 'nothing to hand to');
  assert.ok(!selects(handoffEgressTo(missing), 'new'));
  assert.equal(statusOf(missing, 'old')?.queuedJobs, 40);
  assert.equal(missing.finalizer, undefined);
  assert.equal(missing.requeueAfterMs, 5000);

  const noRelayYet = decideOld(source, target({ ready: 0 }), [40]);
  assert.equal(deletingCondition(noRelayYet, 'old')?.reason, 'HandOffTargetMissing');
  assert.ok(relayConfig(noRelayYet).handoff.evacuateTo, 'named already: the relays try it every few seconds');

  const created = decideOld(source, target(), [12]);
  assert.equal(deletingCondition(created, 'old')?.reason, 'HandingOff');
  assert.equal(statusOf(created, 'old')?.queuedJobs, 12);

  const handedOff = decideOld(source, target(), [0]);
  assert.equal(deletingCondition(handedOff, 'old')?.reason, 'Drained');
  assert.deepEqual(handedOff.finalizer, { remove: 'mailfleet.dev/drain' });
});

test('naming another pool while deleted: the template mounts its Secret (a roll), the config names it', () => {
  const first = decideOld(pool({ to: 'new', deleting: true }), target(), [5]);
  const other: HandOffTarget = { pool: pool({ name: 'other' }), readyRelays: 1 };
  const changed = decideOld(pool({ to: 'other', deleting: true }), other, [5]);
  assert.notEqual(template(changed), template(first), 'a new volume source: the relays roll');
  assert.match(template(changed), /"name":"other-handoff","optional":true/);
  assert.equal(relayConfig(changed).handoff.evacuateTo?.service, 'other-headless.mail.svc');
});

test("the target's NetworkPolicy admits a pool's relays to its handoff port only while that pool hands off to it", async (t) => {
  const newPool = pool({ name: 'new' });
  const cases: { name: string; sources: RelayPool[]; admitted: string[] }[] = [
    { name: 'nobody names it', sources: [], admitted: [] },
    { name: 'a live pool names it: not yet', sources: [pool({ to: 'new' })], admitted: [] },
    {
      name: 'that pool is being deleted: admitted',
      sources: [pool({ to: 'new', deleting: true })],
      admitted: ['old'],
    },
    {
      name: 'two deleting pools name it: both',
      sources: [pool({ to: 'new', deleting: true }), pool({ name: 'older', to: 'new', deleting: true })],
      admitted: ['old', 'older'],
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const d = desiredState(
        observed({ poolName: 'new', pool: newPool, handOffSources: c.sources }),
        fakeGenerators(),
      );
      const from = handoffIngress(d);
      assert.ok(selects(from, 'new'), 'its own relays always');
      for (const name of ['old', 'older']) assert.equal(selects(from, name), c.admitted.includes(name), name);
    });
  await t.test('being deleted itself: nobody hands off to it, nobody more is admitted', () => {
    const gone = pool({ name: 'new', deleting: true });
    const d = desiredState(
      observed({ poolName: 'new', pool: gone, handOffSources: [pool({ to: 'new', deleting: true })] }),
      fakeGenerators(),
    );
    assert.ok(!selects(handoffIngress(d), 'old'));
  });
});
