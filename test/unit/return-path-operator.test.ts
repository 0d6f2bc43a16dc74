// A pool whose domain has spec.returnPath: the relay config asks for VERP and the return-path
// listener with the key file the pod mounts, the key Secret is generated once and then kept (a
// malformed one blocks the pool), the return-path Service and the NetworkPolicy open port 25 ->
// the listener to everyone, and the SendingDomain's status shows the MX record to publish (to
// spec.returnPath.host, else the EHLO name, else none and ReturnPathReady=False). A pool
// without one gets none of it. Imports both programs: the rendered config must be one the relay
// accepts, as test/unit/tracking-operator.test.ts does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { desiredState } from '../../operator/src/desired/state.ts';
import type { Desired, KubeObject } from '../../operator/src/desired/types.ts';
import { findCondition } from '../../operator/src/api/conditions.ts';
import { validateConfig } from '../../relay/src/config/validate.ts';
import {
  fakeGenerators,
  observed,
  relayPool,
  secret,
  secrets,
  sendingDomain,
} from '../helpers/operator/fixtures.ts';
import type { Condition } from '../../operator/src/api/types.ts';

const relayYaml = (d: Desired) => {
  const cm = d.apply.find((o) => o.kind === 'ConfigMap') as KubeObject & { data: Record<string, string> };
  const v = validateConfig(parse(cm.data['relay.yaml']!));
  assert.ok(v.ok, JSON.stringify(v));
  return v.config;
};
type Pod = {
  spec: {
    template: {
      spec: {
        volumes: { name: string; projected?: { sources: { secret?: { name: string } }[] } }[];
        containers: { ports: { name: string; containerPort: number }[] }[];
      };
    };
  };
};
const pod = (d: Desired) =>
  (d.apply.find((o) => o.kind === 'Deployment') as KubeObject & Pod).spec.template.spec;
const projected = (d: Desired) =>
  (pod(d).volumes.find((v) => v.name === 'config')?.projected?.sources ?? []).flatMap((s) =>
    s.secret ? [s.secret.name] : [],
  );
const object = (d: Desired, kind: string, name: string) =>
  d.apply.find((o) => o.kind === kind && o.metadata?.name === name) as
    (KubeObject & { spec: Record<string, unknown> }) | undefined;

const domainStatus = (d: Desired) =>
  d.statuses.find((s) => s.kind === 'SendingDomain')?.status as Record<string, unknown>;
const returnPathReady = (d: Desired) =>
  findCondition(domainStatus(d).conditions as Condition[], 'ReturnPathReady');

const withReturnPath = sendingDomain('example.com', { returnPath: 'bounces.example.com' });

const cases: {
  name: string;
  domain: ReturnType<typeof sendingDomain>;
  existing?: Record<string, string>;
  ehloName?: string;
  /** RelayPool spec.returnPath.host */
  host?: string;
  /** RelayPool spec.service */
  service?: Record<string, unknown>;
  check: (d: Desired) => void;
}[] = [
  {
    name: 'a return path: VERP and listener in the config, key generated and mounted, port 25 published',
    domain: withReturnPath,
    ehloName: 'mta.example.com',
    check: (d) => {
      const c = relayYaml(d);
      assert.equal(c.sendingDomains[0]?.returnPath, 'bounces.example.com');
      assert.equal(c.returnPath?.keyFile, 'returnpath/key');
      assert.equal(c.returnPath?.listener.port, 2527);
      assert.ok(
        d.create.some((o) => o.kind === 'Secret' && o.metadata?.name === 'transactional-return-path'),
      );
      assert.ok(projected(d).includes('transactional-return-path'));
      assert.ok(
        pod(d).containers[0]!.ports.some((p) => p.name === 'return-path' && p.containerPort === 2527),
      );
      const svc = object(d, 'Service', 'transactional-return-path');
      assert.deepEqual(svc?.spec.ports, [
        { name: 'smtp', port: 25, targetPort: 'return-path', protocol: 'TCP' },
      ]);
      const policy = object(d, 'NetworkPolicy', 'transactional');
      const open = (policy?.spec.ingress as { from?: unknown; ports: { port: number }[] }[]).find((r) =>
        r.ports.some((p) => p.port === 2527),
      );
      assert.ok(open && open.from === undefined, 'mailbox providers send from anywhere');
      const status = d.statuses.find((s) => s.kind === 'SendingDomain')?.status as Record<string, unknown>;
      assert.deepEqual(status.returnPathMX, {
        name: 'bounces.example.com',
        type: 'MX',
        value: '10 mta.example.com.',
      });
      // The SPF record to publish is on the return-path domain: receivers check the envelope sender's.
      assert.deepEqual(status.spf, {
        name: 'bounces.example.com',
        type: 'TXT',
        value: 'v=spf1 a:mta.example.com ~all',
      });
      const ready = returnPathReady(d);
      assert.equal(ready?.status, 'True');
      assert.equal(ready?.reason, 'MXTarget');
      assert.match(
        ready?.message ?? '',
        /bounces\.example\.com MX 10 mta\.example\.com\. \(spec\.delivery\.ehloName\)/,
      );
    },
  },
  {
    name: "spec.returnPath.host names the listener's public host: the MX points there, not at the EHLO name",
    domain: withReturnPath,
    ehloName: 'mta.example.com',
    host: 'Bounce-In.Example.com',
    check: (d) => {
      assert.deepEqual(domainStatus(d).returnPathMX, {
        name: 'bounces.example.com',
        type: 'MX',
        value: '10 bounce-in.example.com.',
      });
      assert.match(
        returnPathReady(d)?.message ?? '',
        /\(spec\.returnPath\.host\).*transactional-return-path/,
      );
    },
  },
  {
    name: "the return-path Service is of the pool Service's type (as docs/return-path.md says), keeping client addresses",
    domain: withReturnPath,
    ehloName: 'mta.example.com',
    service: { type: 'LoadBalancer', annotations: { 'lb.example/pool': 'mail' } },
    check: (d) => {
      const svc = object(d, 'Service', 'transactional-return-path');
      assert.equal(svc?.spec.type, 'LoadBalancer');
      assert.equal(svc?.spec.externalTrafficPolicy, 'Local');
      assert.deepEqual(svc?.metadata?.annotations, { 'lb.example/pool': 'mail' });
    },
  },
  {
    name: 'neither a host nor an EHLO name: no MX, and ReturnPathReady=False says what to set',
    domain: withReturnPath,
    check: (d) => {
      assert.equal(domainStatus(d).returnPathMX, undefined);
      const ready = returnPathReady(d);
      assert.equal(ready?.status, 'False');
      assert.equal(ready?.reason, 'NoPublicHost');
      assert.match(ready?.message ?? '', /spec\.returnPath\.host of RelayPool transactional/);
      // The domain still sends: a missing MX loses reports, not mail.
      assert.equal(findCondition(domainStatus(d).conditions as Condition[], 'Ready')?.status, 'True');
      assert.equal(relayYaml(d).sendingDomains[0]?.returnPath, 'bounces.example.com');
    },
  },
  {
    name: 'an existing key is kept, never regenerated',
    domain: withReturnPath,
    existing: { key: 'an-existing-verp-key-0123456789' },
    check: (d) => {
      assert.ok(!d.create.some((o) => o.metadata?.name === 'transactional-return-path'));
      assert.ok(d.keep.includes('Secret/transactional-return-path'));
    },
  },
  {
    name: 'a key shorter than 16 bytes blocks the pool',
    domain: withReturnPath,
    existing: { key: 'short' },
    check: (d) => {
      const pool = d.statuses.find((s) => s.kind === 'RelayPool');
      const ready = findCondition(pool?.status.conditions as Condition[], 'Ready');
      assert.equal(ready?.reason, 'SecretMalformed');
      assert.ok(!d.apply.some((o) => o.kind === 'ConfigMap'));
    },
  },
  {
    name: 'no return path: nothing of it',
    domain: sendingDomain('example.com'),
    check: (d) => {
      const c = relayYaml(d);
      assert.equal(c.returnPath, undefined);
      assert.ok(!projected(d).includes('transactional-return-path'));
      assert.equal(object(d, 'Service', 'transactional-return-path'), undefined);
      const status = d.statuses.find((s) => s.kind === 'SendingDomain')?.status as Record<string, unknown>;
      assert.equal(status.returnPathMX, undefined);
      assert.equal((status.spf as { name: string }).name, 'example.com');
      assert.equal(returnPathReady(d), undefined);
    },
  },
];

for (const c of cases)
  test(c.name, () => {
    const d = desiredState(
      observed({
        pool: relayPool({
          ...(c.ehloName ? { delivery: { ehloName: c.ehloName } } : {}),
          ...(c.host ? { returnPath: { host: c.host } } : {}),
          ...(c.service ? { service: c.service } : {}),
        }),
        domains: [c.domain],
        secrets: secrets(...(c.existing ? [secret('transactional-return-path', c.existing)] : [])),
      }),
      fakeGenerators(),
    );
    c.check(d);
  });
