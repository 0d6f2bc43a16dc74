import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podTemplate } from './pod.ts';
import { deployment } from './deployment.ts';
import { statefulSet } from './statefulset.ts';
import { podDisruptionBudget } from './pdb.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';

const pool = (spec: Partial<RelayPoolSpec> = {}) => withDefaults(relayPool(spec)).resource;

test('the relay container is hardened', () => {
  const t = podTemplate({ pool: pool(), image: 'img:1', checksum: 'abc', persistentSpool: false });
  const c = t.spec?.containers[0];
  assert.equal(c?.securityContext?.runAsNonRoot, true);
  assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(c?.securityContext?.allowPrivilegeEscalation, false);
  assert.deepEqual(c?.securityContext?.capabilities?.drop, ['ALL']);
  assert.equal(c?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  assert.equal(t.spec?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  assert.equal(t.spec?.automountServiceAccountToken, false);
  assert.equal(c?.readinessProbe?.httpGet?.path, '/readyz');
  assert.equal(c?.livenessProbe?.httpGet?.path, '/healthz');
  assert.deepEqual(c?.args, ['relay', '--config', '/etc/mailfleet/relay.yaml']);
  assert.equal(c?.image, 'img:1');
  assert.equal(t.metadata?.annotations?.['mailfleet.dev/restart-checksum'], 'abc');
});

test('the management tokens are projected beside the config, where the rendered config names them', () => {
  const t = podTemplate({ pool: pool(), image: 'img:1', checksum: 'abc', persistentSpool: false });
  const sources = t.spec?.volumes?.find((v) => v.name === 'config')?.projected?.sources ?? [];
  const tokens = sources.find((s) => s.secret?.name === 'transactional-admin-tokens')?.secret;
  assert.deepEqual(tokens?.items, [
    { key: 'read', path: 'admin-tokens/read' },
    { key: 'admin', path: 'admin-tokens/admin' },
  ]);
  const mount = t.spec?.containers[0]?.volumeMounts?.find((m) => m.name === 'config');
  assert.equal(mount?.mountPath, '/etc/mailfleet');
  assert.equal(mount?.subPath, undefined, 'a subPath mount would never see a rotated token');
});

test('pod template by pool spec', async (t) => {
  const cases: {
    name: string;
    spec: Partial<RelayPoolSpec>;
    ports: string[];
    grace: number;
    spread: string[];
    tlsMounted: boolean;
    memoryLimit: string;
  }[] = [
    {
      name: 'defaults: smtp only, 60s drain, spread over nodes and zones',
      spec: {},
      ports: ['smtp:25', 'http:8080', 'handoff:2526'],
      grace: 90,
      spread: ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'],
      tlsMounted: false,
      memoryLimit: '512Mi', // the schema default
    },
    {
      name: 'submission with TLS, 2m drain, resources',
      spec: {
        listeners: { submission: { enabled: true, port: 2587 } },
        tls: { secretName: 'tls' },
        drainTimeout: '2m',
        resources: { limits: { memory: '1Gi' } },
      },
      ports: ['smtp:25', 'submission:2587', 'http:8080', 'handoff:2526'],
      grace: 150,
      spread: ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'],
      tlsMounted: true,
      memoryLimit: '1Gi',
    },
    {
      name: 'custom spread replaces the default',
      spec: {
        scheduling: {
          topologySpreadConstraints: [
            { topologyKey: 'rack', maxSkew: 2, whenUnsatisfiable: 'DoNotSchedule' },
          ],
        },
      },
      ports: ['smtp:25', 'http:8080', 'handoff:2526'],
      grace: 90,
      spread: ['rack'],
      tlsMounted: false,
      memoryLimit: '512Mi',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const tpl = podTemplate({ pool: pool(c.spec), image: 'i', checksum: 'x', persistentSpool: false });
      const container = tpl.spec?.containers[0];
      assert.deepEqual(
        container?.ports?.map((p) => `${p.name}:${p.containerPort}`),
        c.ports,
      );
      assert.equal(tpl.spec?.terminationGracePeriodSeconds, c.grace);
      assert.deepEqual(
        tpl.spec?.topologySpreadConstraints?.map((s) => s.topologyKey),
        c.spread,
      );
      const sources = tpl.spec?.volumes?.find((v) => v.name === 'config')?.projected?.sources ?? [];
      assert.equal(
        sources.some((s) => s.secret?.name === 'tls'),
        c.tlsMounted,
      );
      assert.equal(container?.resources?.limits?.memory, c.memoryLimit);
    });
  }
});

test('every relay can hand off: the internal port, the pool secret mounted where the config names it', () => {
  const tpl = podTemplate({ pool: pool(), image: 'i', checksum: 'x', persistentSpool: false });
  const sources = tpl.spec?.volumes?.find((v) => v.name === 'config')?.projected?.sources ?? [];
  const handoff = sources.find((s) => s.secret?.name === 'transactional-handoff');
  assert.deepEqual(handoff?.secret?.items, [{ key: 'secret', path: 'handoff/secret' }]);
  assert.ok(tpl.spec?.containers[0]?.ports?.some((p) => p.name === 'handoff' && p.containerPort === 2526));
});

test('a rollout never drops below the ready relays: one new relay first, none unavailable', () => {
  const d = deployment({ pool: pool({ replicas: 3 }), image: 'i', checksum: 'x' });
  assert.equal(d.spec?.strategy?.type, 'RollingUpdate');
  assert.equal(d.spec?.strategy?.rollingUpdate?.maxUnavailable, 0);
  assert.equal(d.spec?.strategy?.rollingUpdate?.maxSurge, 1);
});

test('Deployment uses an emptyDir spool; StatefulSet a PVC per relay', () => {
  const d = deployment({ pool: pool({ replicas: 3 }), image: 'i', checksum: 'x' });
  assert.equal(d.spec?.replicas, 3);
  assert.ok(d.spec?.template.spec?.volumes?.find((v) => v.name === 'spool')?.emptyDir);
  assert.equal(d.spec?.strategy?.rollingUpdate?.maxUnavailable, 0);
  assert.equal(d.metadata?.ownerReferences?.[0]?.kind, 'RelayPool');
  assert.equal(d.metadata?.ownerReferences?.[0]?.controller, true);
  const s = statefulSet({
    pool: pool({ replicas: 2, queue: { persistence: { size: '5Gi', storageClassName: 'fast' } } }),
    image: 'i',
    checksum: 'x',
  });
  assert.equal(s.spec?.replicas, 2);
  assert.equal(s.spec?.serviceName, 'transactional-headless');
  assert.equal(
    s.spec?.template.spec?.volumes?.find((v) => v.name === 'spool'),
    undefined,
  );
  assert.equal(s.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.storage, '5Gi');
  assert.equal(s.spec?.volumeClaimTemplates?.[0]?.spec?.storageClassName, 'fast');
});

const startupCases: { name: string; spec: Partial<RelayPoolSpec>; persistent: boolean; window: number }[] = [
  { name: 'the default 1Gi quota: the 15-minute floor', spec: {}, persistent: false, window: 900 },
  {
    name: 'no size known (no request, no sizeLimit): the floor',
    spec: { resources: { requests: { cpu: '1' } } },
    persistent: false,
    window: 900,
  },
  // 20 GiB at 8 MiB/s: 2,560 s.
  { name: 'a 20Gi emptyDir quota', spec: { queue: { sizeLimit: '20Gi' } }, persistent: false, window: 2560 },
  {
    name: 'a 50Gi volume (StatefulSet)',
    spec: { queue: { persistence: { size: '50Gi' } } },
    persistent: true,
    window: 6400,
  },
];

for (const c of startupCases)
  test(`liveness waits until the spool could be recovered after a crash: ${c.name}`, () => {
    const container = podTemplate({
      pool: pool(c.spec),
      image: 'i',
      checksum: 'x',
      persistentSpool: c.persistent,
    }).spec?.containers[0];
    const startup = container?.startupProbe;
    assert.equal(startup?.httpGet?.path, '/healthz', 'the relay serves /healthz only after spool recovery');
    const window = (startup?.periodSeconds ?? 0) * (startup?.failureThreshold ?? 0);
    const liveness =
      (container?.livenessProbe?.periodSeconds ?? 0) * (container?.livenessProbe?.failureThreshold ?? 0);
    assert.equal(window, c.window);
    assert.ok(window > 10 * liveness, `startup window ${window}s against liveness ${liveness}s`);
  });

test('the PDB lets a relay that is not ready be evicted, so a crash loop never blocks a node drain', () => {
  const budget = podDisruptionBudget(pool());
  assert.equal(budget.spec?.maxUnavailable, 1);
  assert.equal(budget.spec?.unhealthyPodEvictionPolicy, 'AlwaysAllow');
});
