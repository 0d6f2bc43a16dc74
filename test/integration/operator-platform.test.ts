// The operator as platform teams install it, against the real control plane: in namespaced mode
// (the chart's operator.watchNamespaces), running as the chart's ServiceAccount with exactly the
// Roles the chart renders for that mode and no cluster-wide permission; relay pods pulling from a
// private registry (the operator's default pull secrets, replaced by a pool's own).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { helm } from '../helpers/helm.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { CHART_DIR } from '../helpers/prometheus/chart-files.ts';

const RELEASE_NS = 'mailfleet-system';
const WATCHED = ['team-a', 'team-b'];
const SERVICE_ACCOUNT = 'mf-mailfleet';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let operatorKubeconfigPath = '';
/** The chart's RBAC and ServiceAccount for namespaced mode, as `helm install` would create them. */
let rbacKinds: string[] = [];
const k = (args: string[]) => cp.kubectl(args);
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON of many kinds
type Json = Record<string, any>;
const json = async (args: string[]): Promise<Json> => JSON.parse((await k([...args, '-o', 'json'])).stdout);

const applyPool = (namespace: string, name: string, spec: Record<string, unknown>) =>
  cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name, namespace },
      spec: { replicas: 1, ...spec },
    }),
  });

/** The pull secrets of a pool's Deployment pod template, once the operator has written it. */
const pullSecrets = (namespace: string, pool: string) =>
  eventually(`deployment/${pool}`, async () => {
    const got = await cp.kubectl(['-n', namespace, 'get', `deployment/${pool}`, '-o', 'json'], {
      allowFail: true,
    });
    if (got.code !== 0) return undefined;
    const template = JSON.parse(got.stdout).spec.template.spec as { imagePullSecrets?: { name: string }[] };
    return { names: (template.imagePullSecrets ?? []).map((s) => s.name) };
  });

/** `kubectl auth can-i` as the operator's ServiceAccount (impersonated by the admin). */
const operatorCan = async (args: string[]): Promise<boolean> => {
  const r = await cp.kubectl(
    ['auth', 'can-i', ...args, `--as=system:serviceaccount:${RELEASE_NS}:${SERVICE_ACCOUNT}`],
    {
      allowFail: true,
    },
  );
  return r.stdout.trim() === 'yes';
};

/** Requests the API server refused the operator (HTTP 403), from its own metrics. */
const forbiddenRequests = async (): Promise<number> => {
  const text = await (await fetch(operator!.metricsUrl)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('mailfleet_operator_api_requests_total{') && l.includes('code="403"'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
};

before(async () => {
  cp = await startCluster();
  for (const ns of [...WATCHED, 'elsewhere']) await k(['create', 'namespace', ns]);
  const rendered = helm([
    'template',
    'mf',
    CHART_DIR,
    '--namespace',
    RELEASE_NS,
    '--set',
    `operator.watchNamespaces={${WATCHED.join(',')}}`,
    '--show-only',
    'templates/serviceaccount.yaml',
    '--show-only',
    'templates/rbac.yaml',
  ]);
  assert.equal(rendered.code, 0, rendered.stderr);
  rbacKinds = parseAllDocuments(rendered.stdout)
    .map((d) => d.toJS() as Json | null)
    .filter((d): d is Json => Boolean(d?.kind))
    .map((d) => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`);
  await cp.kubectl(['apply', '-f', '-'], { input: rendered.stdout });
  const kubeconfig = (operatorKubeconfigPath = await cp.serviceAccountKubeconfig(
    RELEASE_NS,
    SERVICE_ACCOUNT,
    {
      path: path.join(path.dirname(cp.kubeconfig), 'sa-namespaced.kubeconfig'),
    },
  ));
  // The chart's arguments for this mode; the scraper is on (it lists relay pods) as by default.
  operator = await startOperator(
    cp,
    'namespaced',
    ['--namespaces', WATCHED.join(','), '--image-pull-secrets', 'mirror,backup'],
    { kubeconfig },
  );
});

after(async () => {
  await operator?.stop();
  await cp?.stop();
});

test('namespaced mode: the chart grants Roles in the watched namespaces (and the Lease one) and nothing cluster-wide', async () => {
  assert.deepEqual(rbacKinds.sort(), [
    `Role/${RELEASE_NS}/mf-mailfleet-leader-election`,
    'Role/team-a/mf-mailfleet',
    'Role/team-b/mf-mailfleet',
    `RoleBinding/${RELEASE_NS}/mf-mailfleet-leader-election`,
    'RoleBinding/team-a/mf-mailfleet',
    'RoleBinding/team-b/mf-mailfleet',
    `ServiceAccount/${RELEASE_NS}/mf-mailfleet`,
  ]);
  const cases: { args: string[]; want: boolean }[] = [
    { args: ['get', 'secrets', '-n', 'team-a'], want: true },
    { args: ['create', 'deployments.apps', '-n', 'team-b'], want: true },
    { args: ['list', 'secrets', '-n', 'elsewhere'], want: false },
    { args: ['list', 'secrets', '--all-namespaces'], want: false },
    { args: ['list', 'relaypools.mailfleet.dev', '--all-namespaces'], want: false },
    { args: ['list', 'secrets', '-n', RELEASE_NS], want: false },
  ];
  for (const c of cases) assert.equal(await operatorCan(c.args), c.want, c.args.join(' '));
});

test('namespaced mode: pools in the watched namespaces become Ready with every Secret they need; others are left alone; no request is refused', async () => {
  // A generated certificate and a DKIM key: the operator creates and reads Secrets in team-b.
  await applyPool('team-b', 'outbound', { tls: {} });
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'SendingDomain',
      metadata: { name: 'example-com', namespace: 'team-b' },
      spec: { domain: 'example.com', poolRef: { name: 'outbound' } },
    }),
  });
  await applyPool('elsewhere', 'ignored', {});
  await k(['-n', 'team-b', 'wait', '--for=condition=Ready', 'rp/outbound', '--timeout=120s']);
  await k(['-n', 'team-b', 'wait', '--for=condition=Ready', 'sd/example-com', '--timeout=60s']);
  const secrets = (await json(['-n', 'team-b', 'get', 'secrets'])).items.map((s: Json) => s.metadata.name);
  for (const name of ['outbound-tls-generated', 'outbound-relay', 'outbound-handoff']) {
    assert.ok(secrets.includes(name), `${name} in ${secrets.join(', ')}`);
  }
  const ignored = await json(['-n', 'elsewhere', 'get', 'rp/ignored']);
  assert.equal(ignored.status, undefined, 'a pool outside the watched namespaces gets no status');
  assert.equal((await k(['-n', 'elsewhere', 'get', 'deployments', '-o', 'name'])).stdout.trim(), '');
  assert.equal(await forbiddenRequests(), 0, 'the operator never asked for what its Roles do not grant');
});

test("relay pods pull with the operator's default secrets, a pool's own list replaces them, an empty list sets none", async () => {
  const ns = 'team-a';
  await applyPool(ns, 'default-secrets', {});
  await applyPool(ns, 'own-secrets', { imagePullSecrets: [{ name: 'team-registry' }] });
  await applyPool(ns, 'no-secrets', { imagePullSecrets: [] });
  assert.deepEqual((await pullSecrets(ns, 'default-secrets')).names, ['mirror', 'backup']);
  assert.deepEqual((await pullSecrets(ns, 'own-secrets')).names, ['team-registry']);
  assert.deepEqual((await pullSecrets(ns, 'no-secrets')).names, []);
  // The pods the workload controller makes from the template carry them too.
  const pods = await eventually('a default-secrets pod', async () => {
    const list = await json(['-n', ns, 'get', 'pods', '-l', 'mailfleet.dev/pool=default-secrets']);
    return list.items.length
      ? (list.items as { spec: { imagePullSecrets?: { name: string }[] } }[])
      : undefined;
  });
  assert.deepEqual(
    pods[0]?.spec.imagePullSecrets?.map((s) => s.name),
    ['mirror', 'backup'],
  );
  // Editing the pool's list rolls the template to the new secrets.
  await applyPool(ns, 'own-secrets', { imagePullSecrets: [{ name: 'team-registry-2' }] });
  await eventually('the new secret in the template', async () => {
    const { names } = await pullSecrets(ns, 'own-secrets');
    return names.join() === 'team-registry-2' || undefined;
  });
});

type Workload = {
  metadata: { namespace: string; name: string; generation: number };
  spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
  status?: { observedGeneration?: number; updatedReplicas?: number };
};
const rolledOut = (d: Workload) =>
  (d.status?.observedGeneration ?? 0) >= d.metadata.generation &&
  (d.status?.updatedReplicas ?? 0) >= d.spec.replicas;
const relayDeployments = async (): Promise<Workload[]> =>
  (await json(['get', 'deployments', '--all-namespaces', '-l', 'app.kubernetes.io/name=mailfleet-relay']))
    .items;

test('an operator upgrade (a new relay image) rolls one pool at a time with --max-concurrent-rollouts=1; the others wait, RolloutQueued', async () => {
  const before = await eventually('every relay Deployment rolled out', async () => {
    const all = await relayDeployments();
    return all.length >= 4 && all.every(rolledOut) ? all : undefined;
  });
  assert.ok(before.every((d) => d.spec.template.spec.containers[0]?.image === 'mailfleet:test'));
  await operator?.stop();
  operator = await startOperator(
    cp,
    'namespaced-upgraded',
    [
      '--namespaces',
      WATCHED.join(','),
      '--image-pull-secrets',
      'mirror,backup',
      '--image',
      'mailfleet:next',
      '--max-concurrent-rollouts',
      '1',
    ],
    { kubeconfig: operatorKubeconfigPath },
  );
  let mostRolling = 0;
  let queuedSeen = false;
  await eventually(
    'every pool on the new image',
    async () => {
      const all = await relayDeployments();
      const rolling = all.filter(
        (d) => d.spec.template.spec.containers[0]?.image === 'mailfleet:next' && !rolledOut(d),
      );
      mostRolling = Math.max(mostRolling, rolling.length);
      const pools = (await json(['get', 'relaypools', '--all-namespaces'])).items as Json[];
      queuedSeen ||= pools.some((p) =>
        (p.status?.conditions ?? []).some((c: Json) => c.type === 'RolloutQueued' && c.status === 'True'),
      );
      const done = all.every(
        (d) => d.spec.template.spec.containers[0]?.image === 'mailfleet:next' && rolledOut(d),
      );
      return done || undefined;
    },
    180_000,
  );
  assert.ok(mostRolling <= 1, `never two pools rolling at once (seen ${mostRolling})`);
  // The same from the cluster's own records: each pool's rollout runs from the creation of its new
  // ReplicaSet to its Deployment's NewReplicaSetAvailable; no two of these intervals overlap.
  const sets = (
    await json(['get', 'replicasets', '--all-namespaces', '-l', 'app.kubernetes.io/name=mailfleet-relay'])
  ).items as Json[];
  const intervals: { pool: string; start: number; end: number }[] = [];
  for (const d of await relayDeployments()) {
    const own = sets.filter(
      (s) =>
        s.metadata.namespace === d.metadata.namespace &&
        s.metadata.ownerReferences?.[0]?.name === d.metadata.name &&
        s.spec.template.spec.containers[0].image === 'mailfleet:next',
    );
    const full = (await json(['-n', d.metadata.namespace, 'get', `deployment/${d.metadata.name}`])) as Json;
    const available = (full.status.conditions as Json[]).find((c) => c.reason === 'NewReplicaSetAvailable');
    intervals.push({
      pool: `${d.metadata.namespace}/${d.metadata.name}`,
      start: Date.parse(own[0]?.metadata.creationTimestamp),
      end: Date.parse(available?.lastUpdateTime),
    });
  }
  intervals.sort((a, b) => a.start - b.start);
  for (let i = 1; i < intervals.length; i++)
    assert.ok(
      intervals[i]!.start >= intervals[i - 1]!.end,
      `${intervals[i]!.pool} started before ${intervals[i - 1]!.pool} finished: ${JSON.stringify(intervals)}`,
    );
  assert.ok(queuedSeen, 'the pools waiting for their turn said so');
  const pools = (await json(['get', 'relaypools', '--all-namespaces'])).items as Json[];
  for (const p of pools.filter((p) => WATCHED.includes(p.metadata.namespace))) {
    const conditions = (p.status?.conditions ?? []) as Json[];
    assert.equal(
      conditions.find((c) => c.type === 'RolloutQueued'),
      undefined,
      `${p.metadata.name}: no longer queued`,
    );
  }
});
