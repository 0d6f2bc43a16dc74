// What the operator may write, against the real API server: an object a user made under the name a
// pool needs is never taken over or pruned; an apply the API server refuses (here an admission
// policy) shows in the pool's status; a change of the spool size, which a StatefulSet cannot take
// in place, recreates the StatefulSet and keeps the spool's claims.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import {
  eventually,
  settledWriteCount,
  startCluster,
  startOperator,
  writeCount,
} from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
const k = (args: string[], input?: string) => cp.kubectl(args, input ? { input } : {});
const tryK = (args: string[]) => cp.kubectl(args, { allowFail: true });
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;
const condition = async (name: string, type: string) =>
  ((await json(['-n', NS, 'get', `rp/${name}`])).status?.conditions ?? []).find(
    (c: { type: string }) => c.type === type,
  ) as { status: string; reason: string; message: string } | undefined;
const pool = (name: string, spec: Record<string, unknown>) =>
  JSON.stringify({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    metadata: { name, namespace: NS },
    spec,
  });

before(async () => {
  cp = await startCluster();
  await k(['create', 'namespace', NS]);
  operator = await startOperator(cp, 'ownership', ['--scrape-interval', '0']);
});

after(async () => {
  await operator?.stop();
  await cp?.stop();
});

test("a user's Service under the pool's name is reported NotOwned, never taken over or deleted", async () => {
  await k(['-n', NS, 'create', 'service', 'clusterip', 'taken', '--tcp=80:8080']);
  const before = await json(['-n', NS, 'get', 'service/taken']);
  // Discard: its kwok pod runs no relay, so a Drain would wait for a queue nobody can read.
  await k(['apply', '-f', '-'], pool('taken', { replicas: 1, deletionPolicy: 'Discard' }));
  const ready = await eventually('NotOwned', async () => {
    const c = await condition('taken', 'Ready');
    return c?.reason === 'NotOwned' ? c : undefined;
  });
  assert.equal(ready.status, 'False');
  assert.match(ready.message, /Service\/taken/);
  // The Event is written after the status: waited for, not read once.
  await eventually(
    'the NotOwned Event',
    async () =>
      /NotOwned/.test(
        (await k(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=taken'])).stdout,
      ),
    30_000,
  );
  const service = await json(['-n', NS, 'get', 'service/taken']);
  assert.equal(service.metadata.resourceVersion, before.metadata.resourceVersion, 'the Service is untouched');
  assert.equal(service.metadata.ownerReferences, undefined);
  await k(['-n', NS, 'delete', 'rp/taken', '--wait=true']);
  await new Promise((r) => setTimeout(r, 2_000));
  assert.equal((await tryK(['-n', NS, 'get', 'service/taken'])).code, 0, 'the Service outlives the pool');
});

test('an object carrying our labels but not controlled by the pool is not pruned', async () => {
  await k(['apply', '-f', '-'], pool('labelled', { replicas: 1 }));
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/labelled', '--timeout=90s']);
  await k(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'labelled-notes',
        namespace: NS,
        labels: { 'app.kubernetes.io/managed-by': 'mailfleet-operator', 'mailfleet.dev/pool': 'labelled' },
      },
      data: { note: 'mine' },
    }),
  );
  // A change of the pool makes a reconcile with pruning.
  await k(['-n', NS, 'patch', 'rp/labelled', '--type=merge', '-p', '{"spec":{"replicas":2}}']);
  await eventually(
    'scaled',
    async () => (await json(['-n', NS, 'get', 'deployment/labelled'])).spec.replicas === 2,
  );
  await new Promise((r) => setTimeout(r, 3_000));
  assert.equal((await tryK(['-n', NS, 'get', 'configmap/labelled-notes'])).code, 0, 'still there');
});

test('an apply the API server refuses shows as ApplyFailed, and the pool recovers when it is allowed', async () => {
  await k(['apply', '-f', '-'], pool('policed', { replicas: 1 }));
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/policed', '--timeout=90s']);
  // An admission policy (as Kyverno or Gatekeeper would) refusing the pool's relay image.
  await k(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingAdmissionPolicy',
          metadata: { name: 'no-unapproved-relay-image' },
          spec: {
            failurePolicy: 'Fail',
            matchConstraints: {
              resourceRules: [
                {
                  apiGroups: ['apps'],
                  apiVersions: ['v1'],
                  operations: ['CREATE', 'UPDATE'],
                  resources: ['deployments'],
                },
              ],
            },
            validations: [
              {
                expression: "object.spec.template.spec.containers.all(c, c.image != 'mailfleet:unapproved')",
                message: 'image mailfleet:unapproved is not approved',
              },
            ],
          },
        },
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingAdmissionPolicyBinding',
          metadata: { name: 'no-unapproved-relay-image' },
          spec: { policyName: 'no-unapproved-relay-image', validationActions: ['Deny'] },
        },
      ],
    }),
  );
  // The API server loads a new policy within a second or so: wait until it refuses.
  await eventually('the policy enforced', async () => {
    const probe = await tryK([
      '-n',
      NS,
      'create',
      'deployment',
      'probe',
      '--image=mailfleet:unapproved',
      '--dry-run=server',
    ]);
    return probe.code !== 0 || undefined;
  });
  await k([
    '-n',
    NS,
    'patch',
    'rp/policed',
    '--type=merge',
    '-p',
    '{"spec":{"image":"mailfleet:unapproved"}}',
  ]);
  const failed = await eventually(
    'ApplyFailed',
    async () => {
      const c = await condition('policed', 'Ready');
      return c?.reason === 'ApplyFailed' ? c : undefined;
    },
    120_000,
  );
  assert.equal(failed.status, 'False');
  assert.match(failed.message, /Deployment\/policed.*not approved/);
  assert.equal((await condition('policed', 'Degraded'))?.status, 'True');
  await k(['delete', 'validatingadmissionpolicybinding', 'no-unapproved-relay-image']);
  await k(['delete', 'validatingadmissionpolicy', 'no-unapproved-relay-image']);
  await eventually(
    'Ready again',
    async () => (await condition('policed', 'Ready'))?.status === 'True',
    120_000,
  );
  const deployment = await json(['-n', NS, 'get', 'deployment/policed']);
  assert.equal(deployment.spec.template.spec.containers[0].image, 'mailfleet:unapproved');
});

test('a bigger spool recreates the StatefulSet with the new claim template and keeps the spool claim', async () => {
  // The test cluster has no provisioner: volumes for the claims to bind.
  for (const size of ['1Gi', '2Gi'])
    await k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: `spooled-${size.toLowerCase()}` },
        spec: {
          capacity: { storage: size },
          accessModes: ['ReadWriteOnce'],
          hostPath: { path: `/tmp/spooled-${size}` },
        },
      }),
    );
  await k(['apply', '-f', '-'], pool('spooled', { replicas: 1, queue: { persistence: { size: '1Gi' } } }));
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/spooled', '--timeout=90s']);
  const before = await json(['-n', NS, 'get', 'statefulset/spooled']);
  const claimsBefore = await json(['-n', NS, 'get', 'pvc', '-l', 'app.kubernetes.io/instance=spooled']);
  assert.equal(claimsBefore.items.length, 1);
  await k([
    '-n',
    NS,
    'patch',
    'rp/spooled',
    '--type=merge',
    '-p',
    '{"spec":{"queue":{"persistence":{"size":"2Gi"}}}}',
  ]);
  const after = await eventually('recreated', async () => {
    const r = await tryK(['-n', NS, 'get', 'statefulset/spooled', '-o', 'json']);
    if (r.code !== 0) return undefined;
    const sts = JSON.parse(r.stdout);
    return sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage === '2Gi' ? sts : undefined;
  });
  assert.notEqual(after.metadata.uid, before.metadata.uid, 'a new StatefulSet');
  await eventually(
    'Ready after the recreation',
    async () => (await condition('spooled', 'Ready'))?.status === 'True',
  );
  // The spool's claim (the queued mail) outlives the StatefulSet: same claim, and bound.
  const claimsAfter = await json(['-n', NS, 'get', 'pvc', '-l', 'app.kubernetes.io/instance=spooled']);
  assert.deepEqual(
    claimsAfter.items.map((c: { metadata: { uid: string } }) => c.metadata.uid),
    claimsBefore.items.map((c: { metadata: { uid: string } }) => c.metadata.uid),
  );
  assert.equal(claimsAfter.items[0].status.phase, 'Bound');
});

test('a CPU request written as 0.5 (the server keeps 500m) is not re-applied on every pass', async () => {
  await k(
    ['apply', '-f', '-'],
    pool('halfcpu', { replicas: 1, resources: { requests: { cpu: '0.5', memory: '1024Mi' } } }),
  );
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/halfcpu', '--timeout=90s']);
  const deployment = await json(['-n', NS, 'get', 'deployment/halfcpu']);
  assert.equal(deployment.spec.template.spec.containers[0].resources.requests.cpu, '500m');
  // Settled first: a late write of an earlier pool's reconcile must not land in the window below.
  const before = await settledWriteCount(operator!);
  // An annotation makes the pool's reconcile run without changing anything it decides.
  await k(['-n', NS, 'annotate', 'rp/halfcpu', 'touched=1']);
  await new Promise((r) => setTimeout(r, 5_000));
  assert.equal(await writeCount(operator!), before, 'nothing written');
  assert.equal(
    (await json(['-n', NS, 'get', 'deployment/halfcpu'])).metadata.resourceVersion,
    deployment.metadata.resourceVersion,
  );
});
