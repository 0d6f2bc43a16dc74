// Many new RSA domains at once: keys are made off the event loop, at most a share per pass, each
// pass storing its keys; the pool is reconciled again until every domain has its own key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';

const NS = 'mail';
const DOMAINS = 100;
let cp: ControlPlane;
let operator: OperatorProcess | undefined;

before(async () => {
  cp = await startCluster(1);
  await cp.kubectl(['create', 'namespace', NS]);
  // A resync of an hour: only the operator's own requeue can finish the keys in time.
  operator = await startOperator(cp, 'keys', ['--scrape-interval', '0', '--resync', '3600']);
});

after(async () => {
  await operator?.stop();
  await cp?.stop();
});

test(`${DOMAINS} new RSA domains in one apply all get their own key, over several passes`, async () => {
  const items = [
    {
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'bulk', namespace: NS },
      spec: { replicas: 1 },
    },
    ...Array.from({ length: DOMAINS }, (_, i) => ({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'SendingDomain',
      metadata: { name: `d${i}`, namespace: NS },
      spec: { domain: `d${i}.example`, poolRef: { name: 'bulk' } },
    })),
  ];
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  });
  const keys = await eventually(
    'every domain has its key',
    async () => {
      const list = JSON.parse(
        (await cp.kubectl(['-n', NS, 'get', 'secrets', '-l', 'mailfleet.dev/sending-domain', '-o', 'json']))
          .stdout,
      ) as { items: { data: Record<string, string> }[] };
      return list.items.length === DOMAINS ? list.items : undefined;
    },
    120_000,
  );
  const pems = new Set(keys.map((s) => Object.values(s.data)[0]));
  assert.equal(pems.size, DOMAINS, 'a distinct key for every domain');
  await cp.kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'sd', '--all', '--timeout=60s']);
  const created = (operator?.logs ?? []).filter((l) => l.includes('"msg":"created"') && l.includes('-dkim-'));
  assert.equal(created.length, DOMAINS);
  // The first pass stored its share and applied the relay Secret before the last keys existed: not
  // one long pass that blocked the event loop making them all.
  const logs = operator?.logs ?? [];
  const firstRelayApply = logs.findIndex(
    (l) => l.includes('"msg":"applied"') && l.includes('"name":"bulk-relay"'),
  );
  const lastKey = logs.findLastIndex((l) => l.includes('"msg":"created"') && l.includes('-dkim-'));
  assert.ok(firstRelayApply >= 0 && firstRelayApply < lastKey, 'keys were stored over several passes');
});
