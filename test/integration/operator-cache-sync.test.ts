// An operator that starts (a restart, a failover) while some of its lists are slow must not
// reconcile from half-filled caches: with the RelayPool list in and the SendingDomain and RateLimit
// lists still on their way, a reconcile would render a relay config with no sending domains (every
// relay then refuses every sender with 550) and no limits. Here those two lists are held back for
// seconds by a proxy in front of the API server; the new operator must write nothing at all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import {
  eventually,
  operatorKubeconfig,
  startCluster,
  startOperator,
  writeCount,
} from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { isList, startApiProxy } from '../helpers/operator/api-proxy.ts';
import type { ApiProxy } from '../helpers/operator/api-proxy.ts';

const NS = 'mail';
const HOLD_MS = 6_000;
let cp: ControlPlane;
const operators: OperatorProcess[] = [];
let proxy: ApiProxy | undefined;
const k = (args: string[], input?: string) => cp.kubectl(args, input ? { input } : {});
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;
const ready = (o: { status?: { conditions?: { type: string; status: string }[] } }) =>
  o.status?.conditions?.find((c) => c.type === 'Ready')?.status;

before(async () => {
  cp = await startCluster();
  await k(['create', 'namespace', NS]);
});

after(async () => {
  for (const op of operators) await op.stop();
  await proxy?.stop();
  await cp?.stop();
});

test('an operator whose SendingDomain and RateLimit lists are slow writes nothing before they arrive', async () => {
  const first = await startOperator(cp, 'sync-a', ['--scrape-interval', '0']);
  operators.push(first);
  await k(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'mailfleet.dev/v1alpha1',
          kind: 'RelayPool',
          metadata: { name: 'sync', namespace: NS },
          spec: { replicas: 1 },
        },
        {
          apiVersion: 'mailfleet.dev/v1alpha1',
          kind: 'SendingDomain',
          metadata: { name: 'sync-example', namespace: NS },
          spec: { domain: 'sync.example', poolRef: { name: 'sync' }, dkim: { algorithm: 'ed25519-sha256' } },
        },
        {
          apiVersion: 'mailfleet.dev/v1alpha1',
          kind: 'RateLimit',
          metadata: { name: 'sync-limit', namespace: NS },
          spec: {
            poolRef: { name: 'sync' },
            match: { recipientDomains: ['gmail.com'] },
            rate: { messages: 10, per: 'Second' },
          },
        },
      ],
    }),
  );
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/sync', 'sd/sync-example', '--timeout=90s']);
  const configMap = async () => {
    const cm = await json(['-n', NS, 'get', 'configmap', '-l', 'mailfleet.dev/pool=sync']);
    assert.equal(cm.items.length, 1, 'one relay ConfigMap');
    return cm.items[0];
  };
  const before = await configMap();
  assert.match(before.data['relay.yaml'], /sync\.example/, 'the rendered config carries the domain');
  await first.stop();

  proxy = await startApiProxy(
    await operatorKubeconfig(cp, 'sync-b'),
    (method, url) =>
      isList('sendingdomains')(method, url) || isList('ratelimits')(method, url) ? HOLD_MS : 0,
    path.join(path.dirname(cp.kubeconfig), 'sync-b-proxy.kubeconfig'),
  );
  const second = await startOperator(cp, 'sync-b', ['--scrape-interval', '0', '--batch-ms', '200'], {
    kubeconfig: proxy.kubeconfig,
  });
  operators.push(second);
  const p = proxy;
  await eventually('both slow lists served', async () => p.delayed.length >= 2, 30_000);
  // The lists are answered HOLD_MS after they were asked for; then the held reconcile runs.
  await new Promise((r) => setTimeout(r, HOLD_MS + 5_000));
  assert.equal(
    await writeCount(second),
    0,
    `the new operator wrote nothing; held back: ${p.delayed.join(', ')}`,
  );
  const after = await configMap();
  assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'relay config untouched');
  assert.equal(ready(await json(['-n', NS, 'get', 'rp/sync'])), 'True');
  assert.equal(ready(await json(['-n', NS, 'get', 'sd/sync-example'])), 'True');
});
