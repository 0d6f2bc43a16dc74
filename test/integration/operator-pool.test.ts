// The operator against a real control plane (etcd + kube-apiserver + controllers + kwok), running
// with exactly the RBAC it documents: samples become Ready, children are restored, idle means no writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import {
  eventually,
  settledWriteCount,
  startCluster,
  startOperator,
  writeCount,
} from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';

let cp: ControlPlane;
let operator: OperatorProcess | undefined;
const k = (args: string[]) => cp.kubectl(args);
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON of many kinds
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;

before(async () => {
  cp = await startCluster();
  await k(['apply', '-f', path.join(REPO_ROOT, 'crds/samples/namespace.yaml')]);
  // The sample pool asks for persistence: kwok has no storage, so the test drops it (an emptyDir
  // spool). Its certificate is the operator's (tls: {}): no Secret to make first.
  operator = await startOperator(cp, 'op-a');
});

after(async () => {
  await operator?.stop();
  await cp?.stop();
});

test('the samples become Ready with every child', async () => {
  const pool = (
    await k([
      'create',
      '--dry-run=client',
      '-o',
      'json',
      '-f',
      path.join(REPO_ROOT, 'crds/samples/relaypool.yaml'),
    ])
  ).stdout;
  const spec = JSON.parse(pool);
  delete spec.spec.queue;
  await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(spec) });
  await k([
    'apply',
    '-f',
    path.join(REPO_ROOT, 'crds/samples/sendingdomains.yaml'),
    '-f',
    path.join(REPO_ROOT, 'crds/samples/ratelimits.yaml'),
  ]);
  await k(['-n', 'mail', 'wait', '--for=condition=Ready', 'rp/transactional', '--timeout=120s']);
  for (const child of [
    'configmap/transactional-config',
    'secret/transactional-relay',
    'secret/transactional-credentials',
    'deployment/transactional',
    'service/transactional',
    'poddisruptionbudget/transactional',
    'secret/example-com-dkim-mf2026',
    'secret/news-example-com-dkim-news2026',
    'secret/transactional-tls-ca',
    'secret/transactional-tls-generated',
    'configmap/transactional-ca',
  ]) {
    await k(['-n', 'mail', 'get', child]);
  }
  const rp = await json(['-n', 'mail', 'get', 'rp/transactional']);
  assert.equal(rp.status.readyReplicas, 2);
  assert.equal(rp.status.domains, 2);
  assert.equal(rp.status.endpoint.host, 'transactional.mail.svc');
  await k(['-n', 'mail', 'wait', '--for=condition=Ready', 'sd/example-com', '--timeout=60s']);
  const sd = await json(['-n', 'mail', 'get', 'sd/news-example-com']);
  assert.equal(sd.status.dkim.dnsRecord.name, 'news2026._domainkey.news.example.com');
  assert.match(sd.status.dkim.dnsRecord.value, /^v=DKIM1; k=ed25519; p=/);
  const rl = await json(['-n', 'mail', 'get', 'rl/news-to-google']);
  assert.equal(rl.status.effectiveRate, '10/s');
  assert.equal(rl.status.sharedBy, 2);
});

test('an idle operator makes zero write requests', async () => {
  assert.ok(operator);
  const op = operator;
  // Settled: no write for a few seconds, then none over a longer window.
  const start = await settledWriteCount(op);
  await new Promise((r) => setTimeout(r, 15_000));
  assert.equal(await writeCount(op), start);
});

test('drift is corrected: a deleted or edited child is restored', async () => {
  await k(['-n', 'mail', 'delete', 'configmap', 'transactional-config']);
  await eventually(
    'configmap restored',
    async () => (await k(['-n', 'mail', 'get', 'configmap', 'transactional-config'])).code === 0,
  );
  await k([
    '-n',
    'mail',
    'patch',
    'service',
    'transactional',
    '--type=merge',
    '-p',
    '{"spec":{"type":"NodePort"}}',
  ]);
  await eventually(
    'service restored',
    async () => (await json(['-n', 'mail', 'get', 'service', 'transactional'])).spec.type === 'ClusterIP',
  );
});

test('scale through the scale subresource, then switch to persistence', async () => {
  await k(['-n', 'mail', 'scale', 'rp/transactional', '--replicas=3']);
  await eventually(
    'deployment scaled',
    async () => (await json(['-n', 'mail', 'get', 'deployment', 'transactional'])).spec.replicas === 3,
  );
  await eventually(
    'limit share updated',
    async () => (await json(['-n', 'mail', 'get', 'rl/news-to-google'])).status.effectiveRate === '6.67/s',
  );
  await k([
    '-n',
    'mail',
    'patch',
    'rp/transactional',
    '--type=merge',
    '-p',
    '{"spec":{"queue":{"persistence":{"size":"1Gi"}}}}',
  ]);
  await eventually(
    'statefulset created',
    async () => (await k(['-n', 'mail', 'get', 'statefulset', 'transactional'])).code === 0,
  );
  await eventually(
    'deployment pruned',
    async () =>
      (await cp.kubectl(['-n', 'mail', 'get', 'deployment', 'transactional'], { allowFail: true })).code !==
      0,
  );
  await k(['-n', 'mail', 'get', 'service', 'transactional-headless']);
});

test('conflicts and missing references are conditions', async () => {
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'SendingDomain',
      metadata: { name: 'example-com-again', namespace: 'mail' },
      spec: { domain: 'example.com', poolRef: { name: 'transactional' } },
    }),
  });
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RateLimit',
      metadata: { name: 'orphan', namespace: 'mail' },
      spec: { poolRef: { name: 'nope' }, maxConnections: 3 },
    }),
  });
  const reason = async (res: string) => {
    const o = await json(['-n', 'mail', 'get', res]);
    return (o.status?.conditions ?? []).find((c: { type: string }) => c.type === 'Ready')?.reason;
  };
  await eventually(
    'duplicate domain reported',
    async () => (await reason('sd/example-com-again')) === 'DomainConflict',
  );
  await eventually('missing pool reported', async () => (await reason('rl/orphan')) === 'PoolNotFound');
});

test('deleting a Drain pool waits for a queue it cannot read; Discard lets it go and its children are collected', async () => {
  const pool = await json(['-n', 'mail', 'get', 'rp/transactional']);
  assert.deepEqual(pool.metadata.finalizers, ['mailfleet.dev/drain'], 'deletionPolicy Drain by default');
  await k(['-n', 'mail', 'delete', 'rp/transactional', '--wait=false']);
  // kwok pods run no relay: their queues cannot be read, and an unread queue is never empty.
  const deleting = await eventually('the pool reports why it waits', async () => {
    const o = await json(['-n', 'mail', 'get', 'rp/transactional']);
    return o.status?.conditions?.find((c: { type: string }) => c.type === 'Deleting');
  });
  assert.equal(deleting.reason, 'QueueUnknown');
  assert.match(deleting.message, /not read since the deletion/);
  // Its relays stay (the test before made the pool a StatefulSet).
  assert.equal(
    (await json(['-n', 'mail', 'get', 'statefulset/transactional'])).metadata.name,
    'transactional',
  );
  // The documented escape hatch.
  await k([
    '-n',
    'mail',
    'patch',
    'rp/transactional',
    '--type',
    'merge',
    '-p',
    '{"spec":{"deletionPolicy":"Discard"}}',
  ]);
  await k(['-n', 'mail', 'wait', '--for=delete', 'rp/transactional', '--timeout=60s']);
  for (const child of [
    'configmap/transactional-config',
    'secret/transactional-tls-ca',
    'secret/transactional-tls-generated',
    'configmap/transactional-ca',
  ])
    await eventually(
      `${child} collected`,
      async () => (await cp.kubectl(['-n', 'mail', 'get', child], { allowFail: true })).code !== 0,
    );
  await eventually('domains report the missing pool', async () => {
    const o = await json(['-n', 'mail', 'get', 'sd/example-com']);
    return o.status.conditions.find((c: { type: string }) => c.type === 'Ready')?.reason === 'PoolNotFound';
  });
});
