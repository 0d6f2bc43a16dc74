import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1NetworkPolicyIngressRule, V1NetworkPolicyPeer } from '@kubernetes/client-node';
import { networkPolicy } from './networkpolicy.ts';
import { absorbPodLabels } from './absorb.ts';
import { selectorLabels } from './meta.ts';
import { trackerSelector } from './tracker.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';

const pool = (spec: Partial<RelayPoolSpec> = {}) => withDefaults(relayPool(spec)).resource;
const OPERATOR = ['mailfleet-system', 'monitoring'];
const render = (spec: Partial<RelayPoolSpec> = {}, managementNamespaces = OPERATOR) =>
  networkPolicy({ pool: pool(spec), managementNamespaces });

type Rule = V1NetworkPolicyIngressRule & { from?: V1NetworkPolicyPeer[] };
const ingressTo = (spec: Partial<RelayPoolSpec>, port: number, namespaces = OPERATOR): Rule[] =>
  ((render(spec, namespaces)?.spec?.ingress ?? []) as Rule[]).filter((r) =>
    r.ports?.some((p) => p.port === port),
  );
const namespaceOf = (peer: V1NetworkPolicyPeer) =>
  peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];

test('a pool gets a NetworkPolicy unless it turns it off', () => {
  assert.ok(render(), 'on by default');
  assert.equal(render({ networkPolicy: { enabled: false } }), undefined);
});

test('the management port: the operator and monitoring namespaces, listed namespaces and CIDRs, nobody else', async (t) => {
  const cases: {
    name: string;
    spec: Partial<RelayPoolSpec>;
    namespaces?: string[];
    from: string[];
  }[] = [
    {
      name: 'defaults: the operator namespace and the monitoring namespaces only (not the pool namespace)',
      spec: {},
      from: ['ns:mailfleet-system', 'ns:monitoring'],
    },
    {
      name: 'pool-level namespaces and CIDRs are added, duplicates once',
      spec: { networkPolicy: { managementNamespaces: ['monitoring', 'ops'], metricsFrom: ['192.0.2.0/24'] } },
      from: ['ns:mailfleet-system', 'ns:monitoring', 'ns:ops', 'cidr:192.0.2.0/24'],
    },
    {
      name: 'an operator run outside the cluster knows no namespace: only what the pool lists',
      spec: { networkPolicy: { metricsFrom: ['192.0.2.0/24'] } },
      namespaces: [],
      from: ['cidr:192.0.2.0/24'],
    },
    { name: 'nothing listed anywhere: no rule, so nobody', spec: {}, namespaces: [], from: [] },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const rules = ingressTo(c.spec, 8080, c.namespaces);
      const from = rules.flatMap((r) =>
        (r.from ?? []).map((p) => (p.ipBlock ? `cidr:${p.ipBlock.cidr}` : `ns:${namespaceOf(p)}`)),
      );
      assert.deepEqual(from, c.from);
      for (const r of rules)
        assert.ok((r.from ?? []).length > 0, 'never a rule without sources (= everyone)');
      assert.ok(
        !rules.some((r) => r.from?.some((p) => p.podSelector && !p.namespaceSelector)),
        'no pod-selector peer',
      );
    });
});

test('the SMTP listeners: from the client networks', async (t) => {
  const cases: { name: string; spec: Partial<RelayPoolSpec>; from: string[] | 'anyone' | 'nobody' }[] = [
    {
      name: 'AUTH off: allowedNetworks, the only clients that can relay',
      spec: { allowedNetworks: ['10.0.0.0/8'] },
      from: ['10.0.0.0/8'],
    },
    { name: 'AUTH off and no allowedNetworks: nobody', spec: {}, from: 'nobody' },
    {
      name: 'AUTH on: anyone (an authenticated client may come from anywhere)',
      spec: { auth: { mode: 'Optional' }, tls: { secretName: 'tls' }, allowedNetworks: ['10.0.0.0/8'] },
      from: 'anyone',
    },
    {
      name: 'clientsFrom wins over both',
      spec: {
        auth: { mode: 'Required' },
        tls: { secretName: 'tls' },
        networkPolicy: { clientsFrom: ['198.51.100.0/24'] },
      },
      from: ['198.51.100.0/24'],
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => {
      const rules = ingressTo(c.spec, 25);
      if (c.from === 'nobody') return assert.deepEqual(rules, []);
      assert.equal(rules.length, 1);
      if (c.from === 'anyone') return assert.equal(rules[0]?.from, undefined);
      assert.deepEqual(
        rules[0]?.from?.map((p) => p.ipBlock?.cidr),
        c.from,
      );
    });
});

test('egress: DNS, SMTP or the smarthost; handoff only between relays of the pool (and from its absorb Jobs)', () => {
  const np = render({
    allowedNetworks: ['10.0.0.0/8'],
    delivery: { mode: 'Smarthost', smarthost: { host: 'up.example', port: 2525 } },
  });
  assert.deepEqual(np?.spec?.policyTypes, ['Ingress', 'Egress']);
  assert.deepEqual(
    np?.spec?.egress?.[0]?.ports?.map((p) => `${p.protocol}/${p.port}`),
    ['UDP/53', 'TCP/53'],
  );
  assert.deepEqual(
    np?.spec?.egress?.[1]?.ports?.map((p) => p.port),
    [2525, 25],
  );
  const samePool = [{ podSelector: { matchLabels: selectorLabels('transactional') } }];
  const handoffIn = ingressTo({ allowedNetworks: ['10.0.0.0/8'] }, 2526);
  assert.deepEqual(handoffIn.length, 1);
  // Absorb Jobs (absorb.ts) hand a retained claim's mail in; they are not relays of the pool.
  const absorbPods = { podSelector: { matchLabels: absorbPodLabels('transactional') } };
  assert.deepEqual(handoffIn[0]?.from, [...samePool, absorbPods]);
  const handoffOut = np?.spec?.egress?.[2] as unknown as { to: unknown[]; ports: { port: number }[] };
  assert.deepEqual(handoffOut.to, samePool);
  assert.deepEqual(
    handoffOut.ports.map((p) => p.port),
    [2526],
  );
});

test('the handoff port admits the pool tracker only when it sends events (opened or clicked)', () => {
  const events = { url: 'https://hooks.example.com/e', secretRef: { name: 'hook' } };
  const tracker = { podSelector: { matchLabels: trackerSelector('transactional') } };
  const cases: { name: string; spec: Partial<RelayPoolSpec>; admitted: boolean }[] = [
    { name: 'no spec.events', spec: {}, admitted: false },
    { name: 'events, every type', spec: { events } as Partial<RelayPoolSpec>, admitted: true },
    {
      name: 'events, clicked only',
      spec: { events: { ...events, types: ['clicked'] } } as Partial<RelayPoolSpec>,
      admitted: true,
    },
    {
      name: 'events, relay types only',
      spec: { events: { ...events, types: ['delivered', 'bounced'] } } as Partial<RelayPoolSpec>,
      admitted: false,
    },
  ];
  for (const c of cases) {
    const from = ingressTo(c.spec, 2526)[0]?.from ?? [];
    assert.equal(
      from.some((p) => JSON.stringify(p) === JSON.stringify(tracker)),
      c.admitted,
      c.name,
    );
  }
});
