// The operator survives an API server restart, and of two operator processes only the leader
// writes; the standby takes over when the leader is killed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator, writeCount } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';

let cp: ControlPlane;
const operators: OperatorProcess[] = [];

const pool = (name: string, replicas: number) =>
  JSON.stringify({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    metadata: { name, namespace: 'mail' },
    spec: { replicas },
  });
const readyReason = async (name: string) => {
  const r = await cp.kubectl(['-n', 'mail', 'get', 'rp', name, '-o', 'json'], { allowFail: true });
  if (r.code !== 0) return undefined;
  const conditions = (JSON.parse(r.stdout).status?.conditions ?? []) as { type: string; reason: string }[];
  return conditions.find((c) => c.type === 'Ready')?.reason;
};

before(async () => {
  cp = await startCluster();
  await cp.kubectl(['create', 'namespace', 'mail']);
  operators.push(await startOperator(cp, 'op-a'));
  await new Promise((r) => setTimeout(r, 2000));
  operators.push(await startOperator(cp, 'op-b'));
});

after(async () => {
  for (const op of operators) await op.stop();
  await cp?.stop();
});

test('only the leader writes', async () => {
  await cp.kubectl(['apply', '-f', '-'], { input: pool('one', 1) });
  await eventually('pool one Ready', async () => (await readyReason('one')) === 'RelaysReady');
  const [a, b] = operators;
  assert.ok(a && b);
  assert.ok((await writeCount(a)) > 0, 'the leader wrote the children');
  assert.equal(await writeCount(b), 0, 'the standby wrote nothing');
});

test('the operator recovers from a kube-apiserver restart', async () => {
  await cp.stopApiServer();
  await new Promise((r) => setTimeout(r, 3000));
  await cp.startApiServer();
  await cp.kubectl(['apply', '-f', '-'], { input: pool('two', 1) });
  await eventually(
    'pool two Ready after the restart',
    async () => (await readyReason('two')) === 'RelaysReady',
    120_000,
  );
});

test('the standby takes over when the leader is killed', async () => {
  const [a, b] = operators;
  assert.ok(a && b);
  a.process.kill('SIGKILL');
  await a.stop();
  await cp.kubectl(['apply', '-f', '-'], { input: pool('three', 1) });
  await eventually(
    'pool three Ready through the new leader',
    async () => (await readyReason('three')) === 'RelaysReady',
    120_000,
  );
  assert.ok((await writeCount(b)) > 0);
});
