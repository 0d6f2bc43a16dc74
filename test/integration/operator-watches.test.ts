// What the operator notices without a resync: an edit to a Secret a pool references (unlabelled,
// watched by metadata only), and the ServiceMonitor CRD installed after it started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO_ROOT } from '../controlplane/cluster.ts';
import type { ControlPlane } from '../controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
const k = (args: string[]) => cp.kubectl(args);
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;
const ready = (o: { status?: { conditions?: { type: string }[] } }) =>
  o.status?.conditions?.find((c) => c.type === 'Ready') as { status: string; reason: string } | undefined;

before(async () => {
  cp = await startCluster();
  await k(['create', 'namespace', NS]);
  // The resync is an hour: only the watches can make these tests pass in time.
  operator = await startOperator(cp, 'watches', [
    '--resync',
    '3600',
    '--scrape-interval',
    '0',
    '--crd-check-interval',
    '2',
  ]);
});

after(async () => {
  await operator?.stop();
  await cp?.stop();
});

test('fixing a referenced TLS Secret unblocks the pool without touching the pool', async () => {
  await k(['-n', NS, 'create', 'secret', 'generic', 'edge-tls', '--from-literal=tls.crt=CERT']);
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'edge', namespace: NS },
      spec: { replicas: 1, tls: { secretName: 'edge-tls' }, monitoring: { serviceMonitor: true } },
    }),
  });
  const blocked = await eventually('blocked on the Secret', async () => {
    const c = ready(await json(['-n', NS, 'get', 'rp/edge']));
    return c?.reason === 'SecretMalformed' ? c : undefined;
  });
  assert.equal(blocked.status, 'False');
  await k([
    '-n',
    NS,
    'patch',
    'secret',
    'edge-tls',
    '--type=merge',
    '-p',
    '{"stringData":{"tls.key":"KEY"}}',
  ]);
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/edge', '--timeout=60s']);
});

test('a ServiceMonitor CRD installed later is noticed and the ServiceMonitor created', async () => {
  await assert.rejects(k(['-n', NS, 'get', 'servicemonitor', 'edge']), 'no ServiceMonitor resource yet');
  await k(['apply', '-f', path.join(REPO_ROOT, 'test/helpers/prometheus/monitoring-crds.yaml')]);
  await k([
    'wait',
    '--for=condition=Established',
    'crd/servicemonitors.monitoring.coreos.com',
    '--timeout=60s',
  ]);
  const sm = await eventually('ServiceMonitor created', async () => {
    const r = await k(['-n', NS, 'get', 'servicemonitor', 'edge', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  });
  assert.equal(sm.spec.endpoints[0].relabelings[0].targetLabel, 'pool');
  // And it is watched: a deleted ServiceMonitor comes back.
  await k(['-n', NS, 'delete', 'servicemonitor', 'edge']);
  await eventually('ServiceMonitor restored', async () =>
    (await k(['-n', NS, 'get', 'servicemonitor', 'edge'])).code === 0 ? true : undefined,
  );
});
