import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ABSORB_NAME,
  absorbJob,
  absorbFailedMessage,
  absorbPlan,
  remakeDelayMs,
  replicasWhileAbsorbing,
  retainedCondition,
  unabsorbed,
  type AbsorbFailure,
  type AbsorbInput,
  type ClaimAbsorption,
} from './absorb.ts';
import { withDefaults } from '../api/defaults.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import type { KubeObject } from './types.ts';

const job = (name: string, status: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name },
  status,
});
const succeeded = { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] };
const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
/** A Job the Job controller marked Failed `ms` after T0. */
const failedAt = (ms: number) => ({
  failed: 1,
  conditions: [
    {
      type: 'Failed',
      status: 'True',
      reason: 'PodFailurePolicy',
      message: 'exit code 3',
      lastTransitionTime: at(ms),
    },
  ],
});
const failed = failedAt(0);

const input = (over: Partial<AbsorbInput>): AbsorbInput => ({
  poolName: 'sts',
  claims: ['spool-sts-1'],
  pods: ['sts-0'],
  jobs: [],
  readyRelays: 1,
  ...over,
});

test('which retained claims get an absorb Job, and when each is absorbed or failed', () => {
  const cases: {
    name: string;
    in: Partial<AbsorbInput>;
    states: ClaimAbsorption[];
    create: number[];
    keep: string[];
  }[] = [
    {
      name: 'relay gone, a ready relay: a Job is created',
      in: {},
      states: ['Absorbing'],
      create: [1],
      keep: [],
    },
    {
      name: 'its relay still exists (draining): no Job, two processes never share a spool',
      in: { pods: ['sts-0', 'sts-1'] },
      states: ['RelayStopping'],
      create: [],
      keep: [],
    },
    {
      name: 'no ready relay to take the mail: no Job yet',
      in: { readyRelays: 0 },
      states: ['WaitingForRelays'],
      create: [],
      keep: [],
    },
    {
      name: 'its Job runs: kept, not created again',
      in: { jobs: [job('sts-absorb-1', { active: 1 })] },
      states: ['Absorbing'],
      create: [],
      keep: ['sts-absorb-1'],
    },
    {
      name: 'its Job succeeded: absorbed, the Job kept as the record',
      in: { jobs: [job('sts-absorb-1', succeeded)] },
      states: ['Absorbed'],
      create: [],
      keep: ['sts-absorb-1'],
    },
    {
      name: 'absorbed even with no ready relay left',
      in: { jobs: [job('sts-absorb-1', succeeded)], readyRelays: 0 },
      states: ['Absorbed'],
      create: [],
      keep: ['sts-absorb-1'],
    },
    {
      name: 'its Job just failed: kept (its logs) until its remake is due, no new one',
      in: { jobs: [job('sts-absorb-1', failed)], now: T0 + 10_000 },
      states: ['Failed'],
      create: [],
      keep: ['sts-absorb-1'],
    },
    {
      name: 'its Job failed and its remake is due: not kept (deleted), a new one at the next pass',
      in: { jobs: [job('sts-absorb-1', failed)], now: T0 + 30_000 },
      states: ['Failed'],
      create: [],
      keep: [],
    },
    {
      name: 'its failed Job deleted (by the operator or by hand): a new one at once',
      in: {
        failures: [{ claim: 'spool-sts-1', failures: 2, lastFailedJob: 'u1', lastFailureTime: at(0) }],
        now: T0 + 1000,
      },
      states: ['Absorbing'],
      create: [1],
      keep: [],
    },
    {
      name: 'two claims: one absorbed, one whose relay is stopping, one new',
      in: {
        claims: ['spool-sts-1', 'spool-sts-2', 'spool-sts-3'],
        pods: ['sts-0', 'sts-2'],
        jobs: [job('sts-absorb-1', succeeded)],
      },
      states: ['Absorbed', 'RelayStopping', 'Absorbing'],
      create: [3],
      keep: ['sts-absorb-1'],
    },
    {
      name: "another pool's Job of the same ordinal is not this claim's",
      in: { jobs: [job('other-absorb-1', succeeded)] },
      states: ['Absorbing'],
      create: [1],
      keep: [],
    },
    { name: 'no retained claim: nothing', in: { claims: [] }, states: [], create: [], keep: [] },
    {
      name: 'scaled up over it while its Job runs (StatefulSet held below it): the Job is kept',
      in: { jobs: [job('sts-absorb-1', { active: 1 })], wanted: 3 },
      states: ['Absorbing'],
      create: [],
      keep: ['sts-absorb-1'],
    },
    {
      name: 'scaled up over it, no Job yet: no new Job, its relay will run on it',
      in: { wanted: 3 },
      states: [],
      create: [],
      keep: [],
    },
    {
      name: 'scaled up over it after its Job succeeded: the Job goes',
      in: { jobs: [job('sts-absorb-1', succeeded)], wanted: 2 },
      states: [],
      create: [],
      keep: [],
    },
  ];
  for (const c of cases) {
    const plan = absorbPlan(input(c.in));
    assert.deepEqual(
      plan.claims.map((x) => x.state),
      c.states,
      c.name,
    );
    assert.deepEqual(plan.create, c.create, c.name);
    assert.deepEqual(plan.keep, c.keep, c.name);
  }
});

test('a scale-up waits below the lowest ordinal whose absorb Job still runs', () => {
  const cases: [string, number, KubeObject[], number][] = [
    ['no Job', 3, [], 3],
    [
      'a running Job of a wanted ordinal holds the StatefulSet below it',
      3,
      [job('sts-absorb-1', { active: 1 })],
      1,
    ],
    ['the lowest of two running ones', 4, [job('sts-absorb-3'), job('sts-absorb-2', { active: 1 })], 2],
    ['a running Job past the wanted count holds nothing', 2, [job('sts-absorb-2', { active: 1 })], 2],
    ['a succeeded Job holds nothing', 3, [job('sts-absorb-1', succeeded)], 3],
    ['a failed Job holds nothing', 3, [job('sts-absorb-1', failed)], 3],
    ["another pool's Job holds nothing", 3, [job('stsb-absorb-1'), job('other-absorb-1')], 3],
  ];
  for (const [name, wanted, jobs, want] of cases)
    assert.equal(replicasWhileAbsorbing('sts', wanted, jobs), want, name);
});

test('absorbed claims are no longer reported; the others are, with their state and Job', () => {
  const plan = absorbPlan(
    input({
      claims: ['spool-sts-1', 'spool-sts-2'],
      jobs: [job('sts-absorb-1', succeeded), job('sts-absorb-2', failed)],
    }),
  );
  assert.deepEqual(unabsorbed(plan), ['spool-sts-2']);
  const condition = retainedCondition(plan.claims.filter((c) => c.state !== 'Absorbed'));
  assert.equal(condition.type, 'QueueClaimsRetained');
  assert.equal(condition.reason, 'AbsorbFailed');
  assert.match(
    condition.message,
    /spool-sts-2 \(absorb Job failed once \(PodFailurePolicy: exit code 3\), remade at 2026-01-01T00:00:30.000Z, Job sts-absorb-2\)/,
  );
  assert.doesNotMatch(condition.message, /spool-sts-1/);
  const waiting = retainedCondition(absorbPlan(input({ readyRelays: 0 })).claims);
  assert.equal(waiting.reason, 'WaitingForRelays');
  assert.equal(retainedCondition(absorbPlan(input({})).claims).reason, 'Absorbing');
  assert.match(
    retainedCondition(absorbPlan(input({})).claims, 1).message,
    /held at 1 replicas until the absorb Job of ordinal 1/,
  );
});

test('the absorb Job: the claim mounted as the spool, --evacuate, a relay pod hardening, no port, not selected as a relay', () => {
  const { resource: pool } = withDefaults(
    relayPool(
      { queue: { persistence: { size: '1Gi' } }, scheduling: { nodeSelector: { disk: 'ssd' } } },
      'sts',
    ),
  );
  const j = absorbJob({ pool, image: 'mailfleet:1', checksum: 'x', ordinal: 2, claim: 'spool-sts-2' });
  assert.equal(j.metadata?.name, 'sts-absorb-2');
  assert.equal(j.metadata?.labels?.['mailfleet.dev/pool'], 'sts');
  assert.equal(j.metadata?.ownerReferences?.[0]?.kind, 'RelayPool');
  const spec = j.spec!.template.spec!;
  const labels = j.spec!.template.metadata?.labels ?? {};
  assert.equal(labels['app.kubernetes.io/name'], ABSORB_NAME, 'not the relays selector');
  assert.equal(labels['mailfleet.dev/pool'], undefined, 'not scraped as a relay');
  assert.equal(spec.restartPolicy, 'Never');
  assert.deepEqual(spec.nodeSelector, { disk: 'ssd' });
  assert.equal(j.spec?.backoffLimit, 6);
  const container = spec.containers[0]!;
  // A spool it cannot read or a config with no handoff target fails the Job at once (no six runs).
  const [failJob, ignore] = j.spec?.podFailurePolicy?.rules ?? [];
  assert.equal(failJob?.action, 'FailJob');
  assert.deepEqual(failJob?.onExitCodes, { containerName: container.name, operator: 'In', values: [2, 3] });
  assert.equal(ignore?.action, 'Ignore');
  assert.deepEqual(ignore?.onPodConditions, [{ type: 'DisruptionTarget', status: 'True' }]);
  assert.deepEqual(container.args, ['relay', '--config', '/etc/mailfleet/relay.yaml', '--evacuate']);
  assert.equal(container.ports, undefined);
  assert.equal(container.readinessProbe, undefined);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext?.runAsNonRoot, true);
  assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
  assert.equal(spec.automountServiceAccountToken, false);
  const spool = spec.volumes?.find((v) => v.name === 'spool');
  assert.deepEqual(spool?.persistentVolumeClaim, { claimName: 'spool-sts-2' });
  assert.ok(
    container.volumeMounts?.some((m) => m.name === 'spool' && m.mountPath === '/var/spool/mailfleet'),
  );
  assert.ok(container.volumeMounts?.some((m) => m.name === 'config' && m.readOnly));
});

test('a failed absorb Job is remade after a delay that doubles with each failure, up to an hour', () => {
  const cases: [number, number][] = [
    [1, 30_000],
    [2, 60_000],
    [3, 120_000],
    [7, 1_920_000],
    [8, 3_600_000],
    [40, 3_600_000],
  ];
  for (const [failures, ms] of cases) assert.equal(remakeDelayMs(failures), ms, `${failures} failures`);
});

test('failures of a claim are counted once per failed Job, kept across remakes, forgotten once it is absorbed', () => {
  const record = (failures: number, uid: string, ms: number): AbsorbFailure => ({
    claim: 'spool-sts-1',
    failures,
    lastFailedJob: uid,
    lastFailureTime: at(ms),
  });
  const withUid = (uid: string, status: Record<string, unknown>) => ({
    ...job('sts-absorb-1', status),
    metadata: { name: 'sts-absorb-1', uid },
  });
  const cases: {
    name: string;
    in: Partial<AbsorbInput>;
    failures: AbsorbFailure[];
    counted: number;
    requeueAfterMs?: number;
  }[] = [
    {
      name: 'first failure: counted, an Event, looked at again when its remake is due',
      in: { jobs: [withUid('u1', failedAt(0))], now: T0 + 10_000 },
      failures: [record(1, 'u1', 0)],
      counted: 1,
      requeueAfterMs: 20_000,
    },
    {
      name: 'the same failed Job seen again: not counted twice',
      in: { jobs: [withUid('u1', failedAt(0))], failures: [record(1, 'u1', 0)], now: T0 + 20_000 },
      failures: [record(1, 'u1', 0)],
      counted: 0,
      requeueAfterMs: 10_000,
    },
    {
      name: 'its successor failed too: the second failure, kept twice as long',
      in: {
        jobs: [withUid('u2', failedAt(100_000))],
        failures: [record(1, 'u1', 0)],
        now: T0 + 100_000,
      },
      failures: [record(2, 'u2', 100_000)],
      counted: 1,
      requeueAfterMs: 60_000,
    },
    {
      name: 'the successor runs: the count stays (shown in the condition)',
      in: { jobs: [withUid('u3', { active: 1 })], failures: [record(2, 'u2', 0)], now: T0 },
      failures: [record(2, 'u2', 0)],
      counted: 0,
    },
    {
      name: 'the successor succeeded: absorbed, the count is gone',
      in: { jobs: [withUid('u3', succeeded)], failures: [record(2, 'u2', 0)], now: T0 },
      failures: [],
      counted: 0,
    },
    {
      name: 'the claim is no longer retained (scaled back over it): the count is gone',
      in: { claims: [], failures: [record(2, 'u2', 0)], now: T0 },
      failures: [],
      counted: 0,
    },
  ];
  for (const c of cases) {
    const plan = absorbPlan(input(c.in));
    assert.deepEqual(plan.failures, c.failures, c.name);
    assert.equal(plan.newFailures.length, c.counted, c.name);
    assert.equal(plan.requeueAfterMs, c.requeueAfterMs, c.name);
  }
});

test('the condition and the Event name the claim, its Job, the failure count and when it is remade', () => {
  const plan = absorbPlan(
    input({
      jobs: [{ ...job('sts-absorb-1', failedAt(0)), metadata: { name: 'sts-absorb-1', uid: 'u3' } }],
      failures: [{ claim: 'spool-sts-1', failures: 2, lastFailedJob: 'u2', lastFailureTime: at(-500_000) }],
      now: T0,
    }),
  );
  const [failedClaim] = plan.newFailures;
  assert.ok(failedClaim);
  assert.equal(
    absorbFailedMessage(failedClaim),
    'absorb Job sts-absorb-1 of claim spool-sts-1 failed (PodFailurePolicy: exit code 3); failure 3 since the claim was retained, remade at 2026-01-01T00:02:00.000Z (kubectl logs job/sts-absorb-1)',
  );
  assert.match(
    retainedCondition(plan.claims).message,
    /spool-sts-1 \(absorb Job failed 3 times \(PodFailurePolicy: exit code 3\), remade at 2026-01-01T00:02:00.000Z, Job sts-absorb-1\)/,
  );
  const running = absorbPlan(
    input({
      jobs: [job('sts-absorb-1', { active: 1 })],
      failures: [{ claim: 'spool-sts-1', failures: 3, lastFailedJob: 'u3', lastFailureTime: at(0) }],
    }),
  );
  assert.match(
    retainedCondition(running.claims).message,
    /spool-sts-1 \(being absorbed, earlier Jobs failed 3 times, Job sts-absorb-1\)/,
  );
});
