import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { parse } from 'yaml';
import { desiredState, transitionEvents } from './state.ts';
import type { Desired, KubeObject, WriteProblem } from './types.ts';

import { findCondition } from '../api/conditions.ts';
import type { Condition, RelayPoolStatus, ResourceRequirements } from '../api/types.ts';
import {
  adminTokens,
  fakeGenerators,
  NOW,
  observed,
  rateLimit,
  relayPool,
  secret,
  secrets,
  sendingDomain,
  testKeys,
  workload,
} from '../../../test/helpers/operator/fixtures.ts';

const kinds = (objects: KubeObject[]) => objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
const statusOf = (d: Desired, kind: string, name: string) =>
  d.statuses.find((s) => s.kind === kind && s.name === name)?.status;
const condition = (d: Desired, kind: string, name: string, type: string) =>
  findCondition(statusOf(d, kind, name)?.conditions as Condition[], type);
const tls = secret('tls', { 'tls.crt': 'CERT', 'tls.key': 'KEY' });

test('a new pool: every child, generated secrets, pool waiting for its relays', () => {
  const gen = fakeGenerators();
  const d = desiredState(
    observed({
      pool: relayPool({
        tls: { secretName: 'tls' },
        auth: { mode: 'Optional' },
        listeners: { submission: { enabled: true } },
      }),
      domains: [sendingDomain('example.com', { dkim: { selector: 's1', algorithm: 'ed25519-sha256' } })],
      secrets: secrets(tls),
    }),
    gen,
  );
  assert.deepEqual(kinds(d.apply), [
    'ConfigMap/transactional-config',
    'Deployment/transactional',
    'NetworkPolicy/transactional',
    'PodDisruptionBudget/transactional',
    'Secret/transactional-relay',
    'Service/transactional',
    'Service/transactional-headless',
  ]);
  assert.deepEqual(kinds(d.create), [
    'Secret/example-com-dkim-s1',
    'Secret/transactional-admin-tokens',
    'Secret/transactional-credentials',
    'Secret/transactional-handoff',
  ]);
  // The SMTP password, the handoff secret, the two admin tokens, the users checksum key, then the key.
  assert.deepEqual(gen.generated, [
    'password',
    'password',
    'password',
    'password',
    'password',
    'ed25519-sha256',
  ]);
  const tokens = d.create.find((o) => o.metadata?.name === 'transactional-admin-tokens') as {
    data: Record<string, string>;
  };
  assert.deepEqual(Object.keys(tokens.data).sort(), ['admin', 'read']);
  assert.equal(statusOf(d, 'RelayPool', 'transactional')?.adminTokensSecret, 'transactional-admin-tokens');
  assert.equal(d.prune, true);
  assert.equal(condition(d, 'RelayPool', 'transactional', 'Ready')?.reason, 'WorkloadPending');
  // The domain is in the relay config: Ready at once, while the pool waits for its relays.
  assert.equal(condition(d, 'SendingDomain', 'example-com', 'Ready')?.status, 'True');
  assert.equal(condition(d, 'SendingDomain', 'example-com', 'Ready')?.reason, 'Sending');
  assert.equal(condition(d, 'SendingDomain', 'example-com', 'DKIMKeyReady')?.status, 'True');
  const dkim = statusOf(d, 'SendingDomain', 'example-com')?.dkim as {
    dnsRecord: { name: string; value: string };
  };
  assert.equal(dkim.dnsRecord.name, 's1._domainkey.example.com');
  assert.match(dkim.dnsRecord.value, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  const relaySecret = d.apply.find((o) => o.metadata?.name === 'transactional-relay') as {
    data: Record<string, string>;
  };
  assert.equal(
    Buffer.from(relaySecret.data.users ?? '', 'base64').toString(),
    'relay:$hash$generated-password\n',
  );
  assert.ok(relaySecret.data['dkim.example.com.s1.pem']);
});

/** The relay workload this input makes desiredState() apply (to feed back as the cached child). */
const appliedWorkload = (o: Parameters<typeof observed>[0]) =>
  desiredState(observed(o), fakeGenerators()).apply.find(
    (c) => c.kind === 'Deployment' || c.kind === 'StatefulSet',
  );

test('relays ready: pool and domains Ready, status counts', () => {
  const input = {
    pool: relayPool({ replicas: 2 }),
    domains: [sendingDomain('example.com')],
    secrets: secrets(
      secret('example-com-dkim-mailfleet', { 'dkim.key': testKeys()['rsa-sha256'] ?? '' }),
      secret('transactional-handoff', { secret: 'existing-pool-secret-0123456789' }),
      adminTokens(),
    ),
  };
  const applied = appliedWorkload(input);
  const d = desiredState(
    observed({ ...input, children: [workload('Deployment', 2, 2, 'transactional', { applied })] }),
    fakeGenerators(),
  );
  const status = statusOf(d, 'RelayPool', 'transactional');
  assert.equal(condition(d, 'RelayPool', 'transactional', 'Ready')?.status, 'True');
  assert.equal(condition(d, 'RelayPool', 'transactional', 'Progressing')?.status, 'False');
  assert.equal(status?.readyReplicas, 2);
  assert.equal(status?.domains, 1);
  assert.equal(
    status?.selector,
    'app.kubernetes.io/name=mailfleet-relay,app.kubernetes.io/instance=transactional',
  );
  assert.equal(condition(d, 'SendingDomain', 'example-com', 'Ready')?.status, 'True');
  assert.deepEqual(d.create, [], 'an existing DKIM key, handoff secret or token Secret is never regenerated');
  assert.ok(d.keep.includes('Secret/transactional-handoff'));
  assert.ok(d.keep.includes('Secret/transactional-admin-tokens'), 'the token Secret is not pruned');
});

test('a handoff Secret that lost its key blocks the pool rather than splitting it', () => {
  const d = desiredState(
    observed({ pool: relayPool(), secrets: secrets(secret('transactional-handoff', { other: 'x' })) }),
    fakeGenerators(),
  );
  const ready = condition(d, 'RelayPool', 'transactional', 'Ready');
  assert.equal(ready?.reason, 'SecretMalformed');
  assert.match(ready?.message ?? '', /transactional-handoff/);
});

test('conflicts and missing references are conditions', async (t) => {
  const cases: {
    name: string;
    o: Parameters<typeof observed>[0];
    kind: string;
    object: string;
    reason: string;
    applies: boolean;
  }[] = [
    {
      name: 'domain pointing at a missing pool',
      o: { domains: [sendingDomain('example.com')] },
      kind: 'SendingDomain',
      object: 'example-com',
      reason: 'PoolNotFound',
      applies: false,
    },
    {
      name: 'rate limit pointing at a missing pool',
      o: { rateLimits: [rateLimit('l', { maxConnections: 2 })] },
      kind: 'RateLimit',
      object: 'l',
      reason: 'PoolNotFound',
      applies: false,
    },
    {
      name: 'TLS Secret missing',
      o: { pool: relayPool({ tls: { secretName: 'tls' } }) },
      kind: 'RelayPool',
      object: 'transactional',
      reason: 'SecretNotFound',
      applies: false,
    },
    {
      name: 'TLS Secret without tls.key',
      o: {
        pool: relayPool({ tls: { secretName: 'tls' } }),
        secrets: secrets(secret('tls', { 'tls.crt': 'x' })),
      },
      kind: 'RelayPool',
      object: 'transactional',
      reason: 'SecretMalformed',
      applies: false,
    },
    {
      name: 'smarthost credentials missing',
      o: {
        pool: relayPool({
          delivery: {
            mode: 'Smarthost',
            smarthost: { host: 'up.example', credentialsSecretRef: { name: 'up' } },
          },
        }),
      },
      kind: 'RelayPool',
      object: 'transactional',
      reason: 'SecretNotFound',
      applies: false,
    },
    {
      name: 'management token Secret edited to a token too short to resist guessing',
      o: {
        pool: relayPool(),
        secrets: secrets(adminTokens({ read: 'read-token-0123456789', admin: 'letmein' })),
      },
      kind: 'RelayPool',
      object: 'transactional',
      reason: 'SecretMalformed',
      applies: false,
    },
    {
      name: 'management token Secret that lost its read key',
      o: { pool: relayPool(), secrets: secrets(adminTokens({ admin: 'admin-token-0123456789' })) },
      kind: 'RelayPool',
      object: 'transactional',
      reason: 'SecretMalformed',
      applies: false,
    },
    {
      name: 'domain of a pool whose config is blocked',
      o: { pool: relayPool({ tls: { secretName: 'tls' } }), domains: [sendingDomain('example.com')] },
      kind: 'SendingDomain',
      object: 'example-com',
      reason: 'PoolBlocked',
      applies: false,
    },
    {
      name: 'second SendingDomain claiming a domain',
      o: {
        pool: relayPool(),
        domains: [
          sendingDomain('example.com', {}, { name: 'late', created: '2026-01-02T00:00:00Z' }),
          sendingDomain('example.com', {}, { name: 'early' }),
        ],
      },
      kind: 'SendingDomain',
      object: 'late',
      reason: 'DomainConflict',
      applies: true,
    },
    {
      name: 'referenced DKIM key Secret holds an EC key (DKIM signs with RSA or Ed25519)',
      o: {
        pool: relayPool(),
        domains: [sendingDomain('example.com', { dkim: { keySecretRef: { name: 'mine' } } })],
        secrets: secrets(
          secret('mine', {
            'dkim.key': generateKeyPairSync('ec', { namedCurve: 'P-256' })
              .privateKey.export({ type: 'pkcs8', format: 'pem' })
              .toString(),
          }),
        ),
      },
      kind: 'SendingDomain',
      object: 'example-com',
      reason: 'DKIMKeyNotReady',
      applies: true,
    },
    {
      name: 'referenced DKIM key Secret missing',
      o: {
        pool: relayPool(),
        domains: [sendingDomain('example.com', { dkim: { keySecretRef: { name: 'mine' } } })],
      },
      kind: 'SendingDomain',
      object: 'example-com',
      reason: 'DKIMKeyNotReady',
      applies: true,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const d = desiredState(observed(c.o), fakeGenerators());
      const ready = condition(d, c.kind, c.object, 'Ready');
      assert.equal(ready?.status, 'False');
      assert.equal(ready?.reason, c.reason);
      assert.equal(d.apply.length > 0, c.applies);
      assert.equal(d.prune, c.applies);
      if (c.kind !== 'RelayPool' || c.applies) return;
      assert.equal(condition(d, c.kind, c.object, 'Degraded')?.status, 'True');
    });
  }
});

test('persistence makes a StatefulSet with a headless Service', () => {
  const d = desiredState(
    observed({ pool: relayPool({ queue: { persistence: { size: '1Gi' } } }) }),
    fakeGenerators(),
  );
  assert.ok(kinds(d.apply).includes('StatefulSet/transactional'));
  assert.ok(kinds(d.apply).includes('Service/transactional-headless'));
  assert.ok(!kinds(d.apply).includes('Deployment/transactional'));
});

test('a failed absorb Job: counted in status.absorbFailures with a Warning Event, kept until its remake, the pool looked at again then', () => {
  const claims: KubeObject[] = ['spool-transactional-0', 'spool-transactional-1'].map((name) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name },
  }));
  const persistent = { queue: { persistence: { size: '1Gi' } }, replicas: 1 };
  const failedJob: KubeObject = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'transactional-absorb-1', uid: 'job-uid-1' },
    status: {
      failed: 1,
      conditions: [
        {
          type: 'Failed',
          status: 'True',
          reason: 'PodFailurePolicy',
          message: 'exit code 3',
          lastTransitionTime: new Date(NOW.getTime() - 10_000).toISOString(),
        },
      ],
    },
  };
  const pass = (pool: ReturnType<typeof relayPool>) =>
    desiredState(
      observed({
        pool,
        claims,
        children: [workload('StatefulSet', 1, 1), failedJob],
        pods: ['transactional-0'],
      }),
      fakeGenerators(),
    );
  const first = pass(relayPool(persistent));
  const status = statusOf(first, 'RelayPool', 'transactional') as RelayPoolStatus;
  assert.deepEqual(status.absorbFailures, [
    {
      claim: 'spool-transactional-1',
      failures: 1,
      lastFailedJob: 'job-uid-1',
      lastFailureTime: new Date(NOW.getTime() - 10_000).toISOString(),
    },
  ]);
  assert.deepEqual(first.absorbFailures, { 'spool-transactional-1': 1 });
  assert.ok(first.keep.includes('Job/transactional-absorb-1'), 'kept until its remake is due');
  assert.equal(first.requeueAfterMs, 20_000);
  assert.equal(condition(first, 'RelayPool', 'transactional', 'QueueClaimsRetained')?.reason, 'AbsorbFailed');
  const warnings = first.events.filter((e) => e.reason === 'AbsorbJobFailed');
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.type, 'Warning');
  // The next pass reads what the first wrote: the same failed Job is not counted again.
  const pool = relayPool(persistent);
  pool.status = status;
  const second = pass(pool);
  assert.deepEqual(
    (statusOf(second, 'RelayPool', 'transactional') as RelayPoolStatus).absorbFailures,
    status.absorbFailures,
  );
  assert.equal(second.events.filter((e) => e.reason === 'AbsorbJobFailed').length, 0);
});

test('spool claims of removed relays are reported until their absorb Job emptied them, then the condition goes', () => {
  const claim = (name: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name },
  });
  const claims = ['spool-transactional-0', 'spool-transactional-1', 'spool-transactional-2'].map(claim);
  const persistent = { queue: { persistence: { size: '1Gi' } }, replicas: 1 };
  const retained = desiredState(observed({ pool: relayPool(persistent), claims }), fakeGenerators());
  assert.deepEqual(retained.retainedClaims, ['spool-transactional-1', 'spool-transactional-2']);
  const c = condition(retained, 'RelayPool', 'transactional', 'QueueClaimsRetained');
  assert.equal(c?.status, 'True');
  // No relay is ready yet: nobody to take the mail, no absorb Job.
  assert.equal(c?.reason, 'WaitingForRelays');
  assert.match(c?.message ?? '', /spool-transactional-1 \(.*\), spool-transactional-2 \(/);
  assert.deepEqual(
    retained.create.filter((o) => o.kind === 'Job'),
    [],
  );

  // One relay ready, the relay of ordinal 2 still stopping: ordinal 1 gets its absorb Job.
  const sts = workload('StatefulSet', 1, 1);
  const absorbing = desiredState(
    observed({
      pool: relayPool(persistent),
      claims,
      children: [sts],
      pods: ['transactional-0', 'transactional-2'],
    }),
    fakeGenerators(),
  );
  assert.deepEqual(
    absorbing.create.filter((o) => o.kind === 'Job').map((o) => o.metadata?.name),
    ['transactional-absorb-1'],
  );
  assert.equal(
    condition(absorbing, 'RelayPool', 'transactional', 'QueueClaimsRetained')?.reason,
    'Absorbing',
  );

  // Both Jobs succeeded: the claims are empty, no longer reported; the Jobs are kept as the record.
  const done = (name: string): KubeObject => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name },
    status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] },
  });
  const absorbedPool = relayPool(persistent);
  absorbedPool.status = {
    conditions: statusOf(absorbing, 'RelayPool', 'transactional')?.conditions as Condition[],
  };
  const absorbed = desiredState(
    observed({
      pool: absorbedPool,
      claims,
      children: [sts, done('transactional-absorb-1'), done('transactional-absorb-2')],
      pods: ['transactional-0'],
    }),
    fakeGenerators(),
  );
  assert.deepEqual(absorbed.retainedClaims, []);
  assert.equal(condition(absorbed, 'RelayPool', 'transactional', 'QueueClaimsRetained'), undefined);
  assert.ok(
    absorbed.keep.includes('Job/transactional-absorb-1') &&
      absorbed.keep.includes('Job/transactional-absorb-2'),
  );

  // Scaled back over them: no claim retained, and the condition the pool carried is removed.
  const pool = relayPool({ ...persistent, replicas: 3 });
  pool.status = { conditions: statusOf(retained, 'RelayPool', 'transactional')?.conditions as Condition[] };
  const back = desiredState(
    observed({ pool, claims, children: [sts, done('transactional-absorb-1')] }),
    fakeGenerators(),
  );
  assert.deepEqual(back.retainedClaims, []);
  // Its ordinal runs a relay again: the absorb Job is neither kept nor created (it is pruned).
  assert.ok(!back.keep.some((k) => k.startsWith('Job/')));
  assert.deepEqual(
    back.create.filter((o) => o.kind === 'Job'),
    [],
  );
  assert.equal(condition(back, 'RelayPool', 'transactional', 'QueueClaimsRetained'), undefined);

  // Scaled up to 3 while the absorb Job of ordinal 1 still runs: the StatefulSet stays at 1 replica
  // (one process per spool), the Job is kept; once it succeeded, the StatefulSet gets its 3.
  const running: KubeObject = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'transactional-absorb-1' },
    status: { active: 1 },
  };
  const scaledUp = relayPool({ ...persistent, replicas: 3 });
  const held = desiredState(
    observed({ pool: scaledUp, claims, children: [sts, running], pods: ['transactional-0'] }),
    fakeGenerators(),
  );
  const stsReplicas = (d: Desired) =>
    (d.apply.find((o) => o.kind === 'StatefulSet')?.spec as { replicas?: number } | undefined)?.replicas;
  assert.equal(stsReplicas(held), 1);
  assert.ok(held.keep.includes('Job/transactional-absorb-1'));
  assert.deepEqual(held.retainedClaims, ['spool-transactional-1']);
  assert.match(
    condition(held, 'RelayPool', 'transactional', 'QueueClaimsRetained')?.message ?? '',
    /held at 1 replicas/,
  );
  const released = desiredState(
    observed({
      pool: scaledUp,
      claims,
      children: [sts, done('transactional-absorb-1')],
      pods: ['transactional-0'],
    }),
    fakeGenerators(),
  );
  assert.equal(stsReplicas(released), 3);
  assert.ok(!released.keep.includes('Job/transactional-absorb-1'));

  // persistence removed (a Deployment now): every old claim is retained.
  const deployment = desiredState(observed({ pool: relayPool({ replicas: 3 }), claims }), fakeGenerators());
  assert.deepEqual(
    deployment.retainedClaims,
    claims.map((x) => x.metadata?.name),
  );
});

test('Ready and Progressing follow the rollout of the spec this pass wants, not a stale workload status', () => {
  const readyBefore = (pool: ReturnType<typeof relayPool>) => {
    pool.status = {
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'RelaysReady',
          message: '',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    return pool;
  };
  const oldSpec = appliedWorkload({ pool: relayPool({ replicas: 2 }) });
  const cases: {
    name: string;
    pool: ReturnType<typeof relayPool>;
    child: (applied: KubeObject | undefined) => KubeObject;
    ready: [string, string];
    progressing: [string, string];
    event?: string;
  }[] = [
    {
      name: 'a spec change the workload has not got yet: rolling out, even though its status looks complete',
      pool: readyBefore(relayPool({ replicas: 2, image: 'mailfleet:v2' })),
      child: () => workload('Deployment', 2, 2, 'transactional', { applied: oldSpec }),
      ready: ['False', 'RollingOut'],
      progressing: ['True', 'RollingOut'],
      event: 'Normal',
    },
    {
      name: 'applied, but the workload controller has not observed it yet',
      pool: readyBefore(relayPool({ replicas: 2 })),
      child: (applied) => workload('Deployment', 2, 2, 'transactional', { applied, observedGeneration: 1 }),
      ready: ['False', 'RollingOut'],
      progressing: ['True', 'RollingOut'],
    },
    {
      name: 'old-template pods still running beside the new ones',
      pool: readyBefore(relayPool({ replicas: 2 })),
      child: (applied) => workload('Deployment', 3, 3, 'transactional', { applied, updated: 1 }),
      ready: ['False', 'RollingOut'],
      progressing: ['True', 'RollingOut'],
    },
    {
      name: 'rolled out everywhere',
      pool: readyBefore(relayPool({ replicas: 2 })),
      child: (applied) => workload('Deployment', 2, 2, 'transactional', { applied }),
      ready: ['True', 'RelaysReady'],
      progressing: ['False', 'RolloutComplete'],
    },
    {
      name: 'an HPA scale-up of a Ready pool keeps it Ready while the new relays start',
      pool: readyBefore(relayPool({ replicas: 5 })),
      child: (applied) => workload('Deployment', 2, 5, 'transactional', { applied }),
      ready: ['True', 'RelaysReady'],
      progressing: ['True', 'Scaling'],
    },
    {
      name: 'a new pool is Ready only when every wanted relay is',
      pool: relayPool({ replicas: 3 }),
      child: (applied) => workload('Deployment', 2, 3, 'transactional', { applied }),
      ready: ['False', 'RelaysNotReady'],
      progressing: ['True', 'Scaling'],
    },
    {
      name: 'a Ready pool whose relays all went down',
      pool: readyBefore(relayPool({ replicas: 2 })),
      child: (applied) => workload('Deployment', 0, 2, 'transactional', { applied }),
      ready: ['False', 'RelaysNotReady'],
      progressing: ['True', 'Scaling'],
      event: 'Warning',
    },
  ];
  for (const c of cases) {
    const applied = appliedWorkload({ pool: c.pool });
    const d = desiredState(observed({ pool: c.pool, children: [c.child(applied)] }), fakeGenerators());
    const ready = condition(d, 'RelayPool', 'transactional', 'Ready');
    const progressing = condition(d, 'RelayPool', 'transactional', 'Progressing');
    assert.deepEqual([ready?.status, ready?.reason], c.ready, `${c.name}: Ready`);
    assert.deepEqual([progressing?.status, progressing?.reason], c.progressing, `${c.name}: Progressing`);
    if (c.event) assert.equal(d.events[0]?.type, c.event, `${c.name}: Event type`);
  }
});

test('a Pool-scoped limit is shared by the ready relays', () => {
  const d = desiredState(
    observed({
      pool: relayPool({ replicas: 4 }),
      children: [workload('Deployment', 4)],
      rateLimits: [
        rateLimit('news', {
          rate: { messages: 20, per: 'Second' },
          scope: 'Pool',
          match: { recipientMXHosts: ['*.google.com'] },
        }),
      ],
    }),
    fakeGenerators(),
  );
  const status = statusOf(d, 'RateLimit', 'news');
  assert.equal(status?.effectiveRate, '5/s');
  assert.equal(status?.sharedBy, 4);
  assert.equal(condition(d, 'RateLimit', 'news', 'Degraded')?.reason, 'AsExpected');
  const config = parse(
    (d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> }).data['relay.yaml'] ??
      '',
  );
  assert.deepEqual(config.rateLimits[0].rate, { messages: 5, per: 'second' });
  assert.deepEqual(config.rateLimits[0].match.recipientMXHosts, ['*.google.com']);
});

test('with a shared store a Pool-scoped limit carries its pool-wide numbers, its share as the fallback', () => {
  const cases = [
    { name: 'without sharedState', sharedState: undefined, pool: undefined, says: /each of 3 ready relays/ },
    {
      name: 'with sharedState',
      sharedState: { url: 'redis://valkey:6379' },
      pool: { rate: { messages: 30, per: 'second' }, burst: 30 },
      says: /enforce it together in the shared store/,
    },
  ];
  for (const c of cases) {
    const d = desiredState(
      observed({
        pool: relayPool({ replicas: 3, ...(c.sharedState ? { sharedState: c.sharedState } : {}) }),
        children: [workload('Deployment', 3)],
        rateLimits: [rateLimit('bulk', { rate: { messages: 30, per: 'Second' }, scope: 'Pool' })],
      }),
      fakeGenerators(),
    );
    const config = parse(
      (d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> }).data['relay.yaml'] ??
        '',
    );
    assert.deepEqual(config.rateLimits[0].rate, { messages: 10, per: 'second' }, c.name);
    assert.deepEqual(config.rateLimits[0].pool, c.pool, c.name);
    assert.match(condition(d, 'RateLimit', 'bulk', 'Ready')?.message ?? '', c.says, c.name);
  }
});

test('with a shared store a Pool-scoped connection cap is rendered pool-wide, its share as the fallback', () => {
  const cases = [
    { name: 'without sharedState', sharedState: undefined, pool: undefined },
    { name: 'with sharedState', sharedState: { url: 'redis://valkey:6379' }, pool: { maxConnections: 4 } },
  ];
  for (const c of cases) {
    const d = desiredState(
      observed({
        pool: relayPool({ replicas: 3, ...(c.sharedState ? { sharedState: c.sharedState } : {}) }),
        children: [workload('Deployment', 3)],
        rateLimits: [rateLimit('conns', { maxConnections: 4, scope: 'Pool' })],
      }),
      fakeGenerators(),
    );
    const config = parse(
      (d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> }).data['relay.yaml'] ??
        '',
    );
    assert.equal(config.rateLimits[0].maxConnections, 1, c.name);
    assert.deepEqual(config.rateLimits[0].pool, c.pool, c.name);
  }
});

test('users are rehashed only when a password changed', () => {
  const pool = relayPool({
    tls: { secretName: 'tls' },
    auth: { mode: 'Required', credentialsSecretRef: { name: 'users' } },
  });
  const first = desiredState(
    observed({ pool, secrets: secrets(tls, secret('users', { app: 'pw' })) }),
    fakeGenerators(),
  );
  const applied = first.apply.find((o) => o.metadata?.name === 'transactional-relay') as KubeObject & {
    data: Record<string, string>;
  };
  const stored = secret('transactional-relay', { users: 'app:$stored$\n' }, applied.metadata?.annotations);
  const second = desiredState(
    observed({ pool, secrets: secrets(tls, secret('users', { app: 'pw' }), stored) }),
    fakeGenerators(),
  );
  const again = second.apply.find((o) => o.metadata?.name === 'transactional-relay') as {
    data: Record<string, string>;
  };
  assert.equal(Buffer.from(again.data.users ?? '', 'base64').toString(), 'app:$stored$\n');
  const changed = desiredState(
    observed({ pool, secrets: secrets(tls, secret('users', { app: 'new' }), stored) }),
    fakeGenerators(),
  );
  const rehashed = changed.apply.find((o) => o.metadata?.name === 'transactional-relay') as {
    data: Record<string, string>;
  };
  assert.equal(Buffer.from(rehashed.data.users ?? '', 'base64').toString(), 'app:$hash$new\n');
});

test('a Suspend decision renders the domain suspended and asks for spec.suspend', () => {
  const d = desiredState(
    observed({
      pool: relayPool(),
      domains: [
        sendingDomain('news.example.com', {
          bouncePolicy: { action: 'Suspend', maxBounceRate: 0.05, minMessages: 10 },
        }),
      ],
      secrets: secrets(
        secret('news-example-com-dkim-mailfleet', { 'dkim.key': testKeys()['rsa-sha256'] ?? '' }),
      ),
      bounce: new Map([['news-example-com', { bounced: 5, total: 20 }]]),
    }),
    fakeGenerators(),
  );
  assert.deepEqual(
    d.suspend.map((s) => s.name),
    ['news-example-com'],
  );
  assert.match(d.suspend[0]?.message ?? '', /exceeds maxBounceRate/);
  assert.equal(condition(d, 'SendingDomain', 'news-example-com', 'Suspended')?.status, 'True');
  const config = parse(
    (d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> }).data['relay.yaml'] ??
      '',
  );
  assert.equal(config.sendingDomains[0].suspended, true);
  assert.ok(d.events.some((e) => e.reason === 'BounceRateExceeded' && e.type === 'Warning'));
});

test('condition transitions worth an Event', async (t) => {
  const at = '2026-01-01T00:00:00Z';
  const c = (type: string, status: 'True' | 'False', reason: string) => ({
    type,
    status,
    reason,
    message: reason,
    lastTransitionTime: at,
  });
  const object = sendingDomain('a.example');
  const cases: {
    name: string;
    object?: Parameters<typeof transitionEvents>[0];
    before?: ReturnType<typeof c>[];
    after: ReturnType<typeof c>[];
    want: string[];
  }[] = [
    {
      name: 'a new pool waiting for its relays: nothing',
      object: relayPool(),
      after: [c('Ready', 'False', 'WorkloadPending')],
      want: [],
    },
    {
      name: 'from one starting state to another: nothing',
      before: [c('Ready', 'False', 'WorkloadPending')],
      after: [c('Ready', 'False', 'RelaysNotReady')],
      want: [],
    },
    {
      name: 'a new domain Ready at once: nothing',
      after: [c('Ready', 'True', 'Sending')],
      want: [],
    },
    {
      name: 'a new pool becoming Ready: Normal',
      object: relayPool(),
      before: [c('Ready', 'False', 'RelaysNotReady')],
      after: [c('Ready', 'True', 'RelaysReady')],
      want: ['Normal RelaysReady'],
    },
    {
      name: 'Ready again after a real problem: Normal',
      before: [c('Ready', 'False', 'DKIMKeyNotReady')],
      after: [c('Ready', 'True', 'Sending')],
      want: ['Normal Sending'],
    },
    {
      name: 'losing readiness after being Ready: Warning',
      before: [c('Ready', 'True', 'Sending')],
      after: [c('Ready', 'False', 'PoolBlocked')],
      want: ['Warning PoolBlocked'],
    },
    {
      name: 'a new object with a real problem: Warning',
      after: [c('Ready', 'False', 'DKIMKeyNotReady')],
      want: ['Warning DKIMKeyNotReady'],
    },
    {
      name: 'a pool without a shared store, new or after the store was removed: nothing',
      object: relayPool(),
      before: [c('SharedStateAvailable', 'True', 'Connected')],
      after: [c('SharedStateAvailable', 'False', 'NotConfigured')],
      want: [],
    },
    {
      name: 'suspension: Warning',
      before: [c('Suspended', 'False', 'Sending')],
      after: [c('Suspended', 'True', 'BounceRateExceeded')],
      want: ['Warning BounceRateExceeded'],
    },
  ];
  for (const k of cases)
    await t.test(k.name, () =>
      assert.deepEqual(
        transitionEvents(k.object ?? object, k.before, k.after).map((e) => `${e.type} ${e.reason}`),
        k.want,
      ),
    );
});

test('writes that did not happen make the pool not Ready and Degraded, with the reason', () => {
  const cases: { name: string; problems: WriteProblem[]; reason: string }[] = [
    {
      name: 'an object someone else made under our name',
      problems: [{ object: 'Service/transactional', reason: 'NotOwned', message: 'exists' }],
      reason: 'NotOwned',
    },
    {
      name: 'an apply the API server refused',
      problems: [{ object: 'ConfigMap/transactional-config', reason: 'ApplyFailed', message: 'denied' }],
      reason: 'ApplyFailed',
    },
    {
      name: 'both: not owned is named first',
      problems: [
        { object: 'ConfigMap/transactional-config', reason: 'ApplyFailed', message: 'denied' },
        { object: 'Service/transactional', reason: 'NotOwned', message: 'exists' },
      ],
      reason: 'NotOwned',
    },
  ];
  for (const c of cases) {
    const pool = relayPool({ replicas: 2 });
    const applied = appliedWorkload({ pool });
    const d = desiredState(
      observed({
        pool,
        children: [workload('Deployment', 2, 2, 'transactional', { applied })],
        writeProblems: c.problems,
      }),
      fakeGenerators(),
    );
    const ready = condition(d, 'RelayPool', 'transactional', 'Ready');
    assert.deepEqual([ready?.status, ready?.reason], ['False', c.reason], c.name);
    assert.equal(condition(d, 'RelayPool', 'transactional', 'Degraded')?.status, 'True', c.name);
    for (const p of c.problems) assert.match(ready?.message ?? '', new RegExp(p.object), c.name);
  }
});

test('a relay config nearing the 1 MiB object limit makes the pool Degraded while it still works', () => {
  const label = 'x'.repeat(60);
  const domains = Array.from({ length: 3000 }, (_, i) =>
    sendingDomain(`${label}.${label}.${label}.d${i}.example`, {
      dkim: { keySecretRef: { name: 'shared-key' } },
    }),
  );
  const d = desiredState(
    observed({
      pool: relayPool({ replicas: 1 }),
      domains,
      secrets: secrets(secret('shared-key', { 'dkim.key': testKeys()['ed25519-sha256'] ?? '' })),
    }),
    fakeGenerators(),
  );
  const degraded = condition(d, 'RelayPool', 'transactional', 'Degraded');
  assert.equal(degraded?.status, 'True');
  assert.equal(degraded?.reason, 'ConfigNearSizeLimit');
  assert.match(degraded?.message ?? '', /\d+ KiB of the API server's 1 MiB/);
  assert.ok(
    d.apply.some((o) => o.kind === 'ConfigMap'),
    'still applied',
  );
});

test('relay resources: the schema default when the pool sets none, replaced as a whole by the pool', async (t) => {
  const defaults = {
    requests: { cpu: '250m', memory: '256Mi', 'ephemeral-storage': '1Gi' },
    limits: { memory: '512Mi' },
  };
  const cases: { name: string; resources?: ResourceRequirements; want: ResourceRequirements }[] = [
    { name: 'nothing set: the defaults, no ephemeral-storage limit', resources: undefined, want: defaults },
    {
      name: 'a memory request above the default limit: no default limit under it (a pod the API server accepts)',
      resources: { requests: { cpu: '0.5', memory: '1024Mi' } },
      want: { requests: { cpu: '0.5', memory: '1024Mi' } },
    },
    { name: 'resources: {} sets none', resources: {}, want: {} },
    {
      name: 'limits: {} is left out',
      resources: { requests: { cpu: '1' }, limits: {} },
      want: { requests: { cpu: '1' } },
    },
    {
      name: 'numbers are written as quantities',
      resources: { requests: { cpu: 1 }, limits: { memory: '2Gi', cpu: 4 } },
      want: { requests: { cpu: '1' }, limits: { memory: '2Gi', cpu: '4' } },
    },
  ];
  for (const c of cases) {
    for (const persistence of [undefined, { size: '1Gi' }]) {
      await t.test(`${c.name} (${persistence ? 'StatefulSet' : 'Deployment'})`, () => {
        const spec = {
          ...(c.resources ? { resources: c.resources } : {}),
          ...(persistence ? { queue: { persistence } } : {}),
        };
        const applied = appliedWorkload({ pool: relayPool(spec) }) as {
          spec: { template: { spec: { containers: { name: string; resources?: unknown }[] } } };
        };
        assert.deepEqual(applied.spec.template.spec.containers[0]?.resources, c.want);
      });
    }
  }
});

test('relay image pull secrets: the operator default, replaced by the pool own list, an empty list sets none', async (t) => {
  const cases: { name: string; pool?: { name: string }[]; operator: string[]; want: string[] | undefined }[] =
    [
      { name: 'neither: no imagePullSecrets', operator: [], want: undefined },
      { name: 'the operator default', operator: ['mirror'], want: ['mirror'] },
      {
        name: 'the pool own list wins',
        pool: [{ name: 'team-a' }, { name: 'team-b' }],
        operator: ['mirror'],
        want: ['team-a', 'team-b'],
      },
      { name: 'an empty list in the pool: none', pool: [], operator: ['mirror'], want: undefined },
    ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const d = desiredState(
        observed({
          pool: relayPool(c.pool ? { imagePullSecrets: c.pool } : {}),
          settings: { image: 'mailfleet:test', imagePullSecrets: c.operator },
        }),
        fakeGenerators(),
      );
      const deployment = d.apply.find((o) => o.kind === 'Deployment') as {
        spec: { template: { spec: { imagePullSecrets?: { name: string }[] } } };
      };
      assert.deepEqual(
        deployment.spec.template.spec.imagePullSecrets?.map((s) => s.name),
        c.want,
      );
    });
  }
});

test("relay image: a pool without spec.image follows the operator's, a pool with one keeps it whatever the operator runs", async (t) => {
  const cases = [
    { name: 'follows the operator', image: undefined, operator: 'mailfleet:2', want: 'mailfleet:2' },
    {
      name: 'pinned',
      image: 'registry.local/mailfleet:1',
      operator: 'mailfleet:2',
      want: 'registry.local/mailfleet:1',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const d = desiredState(
        observed({
          pool: relayPool(c.image ? { image: c.image } : {}),
          settings: { image: c.operator },
        }),
        fakeGenerators(),
      );
      const deployment = d.apply.find((o) => o.kind === 'Deployment') as {
        spec: { template: { spec: { containers: { image: string }[] } } };
      };
      assert.equal(deployment.spec.template.spec.containers[0]?.image, c.want);
    });
  }
});

test('a changed pod template: rolled when the pool has a slot, queued (current workload kept, Ready=False RolloutQueued) when not', async (t) => {
  const input = {
    pool: relayPool({ replicas: 2 }),
    secrets: secrets(
      secret('transactional-handoff', { secret: 'existing-pool-secret-0123456789' }),
      adminTokens(),
    ),
  };
  const running = appliedWorkload({ ...input, settings: { image: 'mailfleet:1' } });
  const children = [workload('Deployment', 2, 2, 'transactional', { applied: running })];
  const cases = [
    {
      name: 'same operator image: nothing to roll',
      image: 'mailfleet:1',
      queued: false,
      wanted: false,
      applied: true,
    },
    {
      name: 'a new operator image, a slot: the new template is applied',
      image: 'mailfleet:2',
      queued: false,
      wanted: true,
      applied: true,
    },
    {
      name: 'a new operator image, no slot: queued',
      image: 'mailfleet:2',
      queued: true,
      wanted: true,
      applied: false,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const d = desiredState(
        observed({ ...input, children, settings: { image: c.image }, rolloutQueued: c.queued }),
        fakeGenerators(),
      );
      const deployment = d.apply.find((o) => o.kind === 'Deployment') as
        { spec: { template: { spec: { containers: { image: string }[] } } } } | undefined;
      assert.equal(deployment !== undefined, c.applied);
      if (deployment) assert.equal(deployment.spec.template.spec.containers[0]?.image, c.image);
      assert.equal(d.rollout?.wanted, c.wanted);
      const queued = condition(d, 'RelayPool', 'transactional', 'RolloutQueued');
      assert.equal(queued?.status, c.queued && c.wanted ? 'True' : undefined);
      // Ready means serving the spec asked for: not while the new template waits or rolls.
      const ready = condition(d, 'RelayPool', 'transactional', 'Ready');
      assert.equal(ready?.status, c.wanted ? 'False' : 'True');
      if (c.queued) assert.equal(ready?.reason, 'RolloutQueued');
      if (c.queued) {
        assert.ok(d.keep.includes('Deployment/transactional'), 'the running workload is not pruned');
        assert.ok((d.requeueAfterMs ?? Infinity) <= 5000, 'looks for a slot again soon');
      }
    });
  }
  await t.test('a new pool needs no slot: it has no relays to replace', () => {
    const d = desiredState(observed({ ...input, settings: { image: 'mailfleet:2' } }), fakeGenerators());
    assert.equal(d.rollout?.wanted, false);
  });
});

test('a pool deleted with Drain reports its queued jobs and keeps its relays until they are empty', () => {
  const pool = relayPool();
  pool.metadata.finalizers = ['mailfleet.dev/drain'];
  pool.metadata.deletionTimestamp = '2026-12-05T20:00:00Z' as unknown as Date;
  const at = Date.parse('2026-12-05T20:00:03Z');
  const waiting = desiredState(
    observed({
      pool,
      relayQueues: [
        { pod: 'transactional-a', queued: 120, scrapedAt: at, intakeClosedAt: at - 1000 },
        { pod: 'transactional-b', queued: 3, scrapedAt: at, intakeClosedAt: at - 1000 },
      ],
    }),
    fakeGenerators(),
  );
  assert.equal(statusOf(waiting, 'RelayPool', 'transactional')?.queuedJobs, 123);
  assert.equal(condition(waiting, 'RelayPool', 'transactional', 'Deleting')?.reason, 'DrainingQueue');
  assert.ok(kinds(waiting.apply).includes('Deployment/transactional'), 'the relays stay as they are');
  const relayYaml = (waiting.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> })
    .data['relay.yaml'];
  assert.match(relayYaml ?? '', /^intake:\n {2}open: false$/m, "the relays' intake is closed");
  assert.equal(waiting.finalizer, undefined);
  assert.equal(waiting.requeueAfterMs, 5000, 'looks at the queues again soon');

  const drained = desiredState(
    observed({
      pool,
      relayQueues: [{ pod: 'transactional-a', queued: 0, scrapedAt: at, intakeClosedAt: at - 1000 }],
    }),
    fakeGenerators(),
  );
  assert.equal(statusOf(drained, 'RelayPool', 'transactional')?.queuedJobs, 0);
  assert.equal(condition(drained, 'RelayPool', 'transactional', 'Deleting')?.reason, 'Drained');
  assert.deepEqual(drained.finalizer, { remove: 'mailfleet.dev/drain' });

  const live = desiredState(observed({ pool: relayPool() }), fakeGenerators());
  assert.equal(statusOf(live, 'RelayPool', 'transactional')?.queuedJobs, undefined, 'only while deleting');
  assert.equal(condition(live, 'RelayPool', 'transactional', 'Deleting'), undefined);
});
