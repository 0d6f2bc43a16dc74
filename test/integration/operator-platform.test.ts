// The operator as platform teams install it, against the real control plane with the RBAC it
// documents: relay pods pulling from a private registry (the operator's default pull secrets,
// replaced by a pool's own).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlPlane } from '../controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
const k = (args: string[]) => cp.kubectl(args);

/** A minimal pool, applied as the user would. */
const applyPool = (name: string, spec: Record<string, unknown>) =>
  cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name, namespace: NS },
      spec: { replicas: 1, ...spec },
    }),
  });

/** The pull secrets of a pool's Deployment pod template, once the operator has written it. */
const pullSecrets = (pool: string) =>
  eventually(`deployment/${pool}`, async () => {
    const got = await cp.kubectl(['-n', NS, 'get', `deployment/${pool}`, '-o', 'json'], { allowFail: true });
    if (got.code !== 0) return undefined;
    const template = JSON.parse(got.stdout).spec.template.spec as { imagePullSecrets?: { name: string }[] };
    return { names: (template.imagePullSecrets ?? []).map((s) => s.name) };
  });

before(async () => {
  cp = await startCluster();
  await k(['create', 'namespace', NS]);
  operator = await startOperator(cp, 'platform', [
    '--scrape-interval',
    '0',
    '--image-pull-secrets',
    'mirror,backup',
  ]);
});

after(async () => {
  await operator?.stop();
  await cp?.stop();
});

test("relay pods pull with the operator's default secrets, a pool's own list replaces them, an empty list sets none", async () => {
  await applyPool('default-secrets', {});
  await applyPool('own-secrets', { imagePullSecrets: [{ name: 'team-registry' }] });
  await applyPool('no-secrets', { imagePullSecrets: [] });
  assert.deepEqual((await pullSecrets('default-secrets')).names, ['mirror', 'backup']);
  assert.deepEqual((await pullSecrets('own-secrets')).names, ['team-registry']);
  assert.deepEqual((await pullSecrets('no-secrets')).names, []);
  // The pods the workload controller makes from the template carry them too.
  const pods = await eventually('a default-secrets pod', async () => {
    const list = JSON.parse(
      (await k(['-n', NS, 'get', 'pods', '-l', 'mailfleet.dev/pool=default-secrets', '-o', 'json'])).stdout,
    ) as { items: { spec: { imagePullSecrets?: { name: string }[] } }[] };
    return list.items.length ? list.items : undefined;
  });
  assert.deepEqual(
    pods[0]?.spec.imagePullSecrets?.map((s) => s.name),
    ['mirror', 'backup'],
  );
  // Editing the pool's list rolls the template to the new secrets.
  await applyPool('own-secrets', { imagePullSecrets: [{ name: 'team-registry-2' }] });
  await eventually('the new secret in the template', async () => {
    const { names } = await pullSecrets('own-secrets');
    return names.join() === 'team-registry-2' || undefined;
  });
});
