// What the operator notices without a resync: an edit to a Secret a pool references (unlabelled,
// watched by metadata only), and the ServiceMonitor CRD installed after it started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { Informer } from '../../operator/src/controller/informer.ts';
import { KubeClient } from '../../operator/src/kube/client.ts';
import { loadKubeConfigClass } from '../../operator/src/kube/kubeconfig.ts';
import { jsonLogger } from '../../contract/log.ts';
import { createMetrics } from '../../operator/src/metrics.ts';

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

test('a pool moved to another TLS Secret follows the new one: fixing it makes the pool Ready', async () => {
  await k([
    '-n',
    NS,
    'create',
    'secret',
    'generic',
    'moved-old',
    '--from-literal=tls.crt=C',
    '--from-literal=tls.key=K',
  ]);
  await k(['-n', NS, 'create', 'secret', 'generic', 'moved-new', '--from-literal=tls.crt=CERT']);
  await k([
    '-n',
    NS,
    'patch',
    'rp/edge',
    '--type=merge',
    '-p',
    '{"spec":{"tls":{"secretName":"moved-new"}}}',
  ]);
  await eventually('blocked on the new Secret', async () => {
    const c = ready(await json(['-n', NS, 'get', 'rp/edge']));
    return c?.reason === 'SecretMalformed' ? c : undefined;
  });
  await k([
    '-n',
    NS,
    'patch',
    'secret',
    'moved-new',
    '--type=merge',
    '-p',
    '{"stringData":{"tls.key":"KEY"}}',
  ]);
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/edge', '--timeout=60s']);
});

test('an informer on a quiet kind stays healthy when its watches end at their timeout', async () => {
  await k(['create', 'namespace', 'quiet']);
  const KubeConfig = await loadKubeConfigClass();
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const metrics = createMetrics();
  // Server-side watch timeout 1 s, no objects, no events: only the watch ends can show activity.
  const informer = new Informer({
    kind: 'RateLimit',
    namespace: 'quiet',
    client: new KubeClient(kc),
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    metrics,
    onChange: () => {},
    onDelete: () => {},
    watchSeconds: 1,
  });
  informer.start();
  try {
    await informer.whenSynced;
    const restarts = async (cause: string) =>
      (await metrics.watchRestarts.get()).values.find(
        (v) => v.labels.resource === 'RateLimit' && v.labels.cause === cause,
      )?.value ?? 0;
    // Several timeouts in a row (the watchdog would fire after 2 s without activity).
    await eventually('five watches ended at their timeout', async () => (await restarts('closed')) >= 5);
    assert.equal(await restarts('watchdog'), 0, 'the watchdog never took a timed-out watch for a silent one');
    assert.equal(await restarts('error'), 0);
    const idle = Date.now() - informer.lastActivity;
    assert.ok(idle < 2_000, `last activity ${idle} ms ago, though a watch ended within the last second`);
  } finally {
    informer.stop();
  }
});
