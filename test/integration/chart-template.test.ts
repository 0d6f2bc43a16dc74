// The Helm chart with the real helm binary: `helm lint --strict` and `helm template` with the
// defaults and with every optional feature, explicit checks of the rendered objects, the rendered
// manifests accepted by a real kube-apiserver (`kubectl apply --dry-run=server`), then
// `helm install`, `helm test`, `helm upgrade` and `helm uninstall` against the real control plane
// (kwok nodes make the operator pods Ready without running them).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, startControlPlane } from '../../dev/controlplane/cluster.ts';
import { helm } from '../helpers/helm.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { CHART_DIR, loadAlerts, loadDashboards } from '../helpers/prometheus/chart-files.ts';

const MONITORING_CRDS = path.join(REPO_ROOT, 'test/helpers/prometheus/monitoring-crds.yaml');
const ALL_FEATURES = [
  '--set',
  'metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true,examples.enabled=true,dashboards.enabled=true',
];

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
  rules?: unknown[];
};

/**
 * Every document parsed strictly: the yaml package refuses a duplicate key (uniqueKeys) but only
 * records it in the document's errors, and toJS() returns the map anyway (the last value wins),
 * so a document with any error or warning fails here instead of being read leniently.
 */
function parseStrict(text: string): Manifest[] {
  const documents = parseAllDocuments(text, { uniqueKeys: true, strict: true, prettyErrors: true });
  const problems = documents.flatMap((d, i) =>
    [...d.errors, ...d.warnings].map((e) => `document ${i}: ${e.code} ${e.message}`),
  );
  assert.deepEqual(problems, [], problems.join('\n'));
  return documents.map((d) => d.toJS() as Manifest).filter((m) => m && m.kind);
}

function render(extra: string[] = []): Manifest[] {
  const result = helm(['template', 'fleet', CHART_DIR, '--namespace', 'mailfleet-system', ...extra]);
  assert.equal(result.code, 0, result.stderr);
  return parseStrict(result.stdout);
}

const find = (manifests: Manifest[], kind: string): Manifest[] => manifests.filter((m) => m.kind === kind);
const one = (manifests: Manifest[], kind: string): Manifest => {
  const found = find(manifests, kind);
  assert.equal(found.length, 1, `one ${kind}, found ${found.length}`);
  return found[0] as Manifest;
};

describe('helm lint --strict', () => {
  const cases = [
    { name: 'the default values', args: [] as string[] },
    { name: 'every optional feature enabled', args: ALL_FEATURES },
    {
      name: 'the hardened profile',
      args: ['-f', path.join(CHART_DIR, 'values-hardened.yaml')],
    },
    {
      name: 'namespaced mode',
      args: ['--set', 'operator.watchNamespaces={team-a,team-b}'],
    },
    {
      name: 'one replica without leader election',
      args: ['--set', 'operator.replicas=1,operator.leaderElection.enabled=false'],
    },
  ];
  for (const c of cases) {
    test(`passes with ${c.name}`, () => {
      const result = helm(['lint', '--strict', CHART_DIR, ...c.args]);
      assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }

  test('fails on a value the schema forbids', () => {
    const result = helm(['lint', '--strict', CHART_DIR, '--set', 'operator.replicas=0']);
    assert.notEqual(result.code, 0);
    assert.match(`${result.stdout}${result.stderr}`, /replicas/);
  });
});

describe('helm template', () => {
  test('parseStrict refuses a key written twice in one map', () => {
    const twice =
      'kind: Job\nmetadata:\n  labels:\n    app.kubernetes.io/component: operator\n    app.kubernetes.io/component: test\n';
    assert.throws(() => parseStrict(twice), /DUPLICATE_KEY/);
  });

  for (const c of [
    { name: 'the default values', args: [] as string[] },
    { name: 'every optional feature enabled', args: ALL_FEATURES },
  ]) {
    test(`with ${c.name}, no object but the operator's own carries component: operator, so only operator pods match its selectors`, () => {
      const manifests = render(c.args);
      const service = one(manifests, 'Service');
      const selector = service.spec?.selector as Record<string, string>;
      assert.equal(selector['app.kubernetes.io/component'], 'operator');
      const matches = (labels: Record<string, string> | undefined): boolean =>
        Object.entries(selector).every(([k, v]) => labels?.[k] === v);
      const own = new Set(['Deployment']);
      for (const m of manifests) {
        const podLabels = m.spec?.template?.metadata?.labels as Record<string, string> | undefined;
        assert.equal(matches(podLabels), own.has(m.kind), `${m.kind}/${m.metadata.name} pod labels`);
      }
      for (const kind of c.args.length ? ['RelayPool', 'SendingDomain', 'Job'] : ['Job']) {
        for (const m of find(manifests, kind)) {
          assert.notEqual(
            m.metadata.labels?.['app.kubernetes.io/component'],
            'operator',
            `${kind}/${m.metadata.name}`,
          );
          assert.equal(m.metadata.labels?.['app.kubernetes.io/part-of'], 'mailfleet');
        }
      }
    });
  }

  test('the defaults render the operator, its RBAC, Service, PDB, dashboards and test hook, nothing optional', () => {
    const manifests = render();
    assert.deepEqual(manifests.map((m) => m.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'ConfigMap',
      'ConfigMap',
      'Deployment',
      'Job',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
  });

  test('the operator Deployment: 2 replicas, leader election, hardened pod', () => {
    const deployment = one(render(), 'Deployment');
    const spec = deployment.spec ?? {};
    assert.equal(spec.replicas, 2);
    const pod = spec.template.spec;
    assert.equal(pod.serviceAccountName, 'fleet-mailfleet');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    const container = pod.containers[0];
    assert.equal(container.image, 'ghcr.io/mailfleet/mailfleet:0.1.0');
    assert.equal(container.args[0], 'operator');
    // The image's entrypoint with node's memory flags in between (NODE_OPTIONS refuses V8 GC flags).
    assert.deepEqual(container.command, [
      'node',
      '--max-semi-space-size=2',
      '--heap-growing-percent=30',
      '/app/bin/mailfleet.ts',
    ]);
    assert.equal(
      container.env.find((e: { name: string }) => e.name === 'NODE_OPTIONS'),
      undefined,
    );
    assert.ok(container.args.includes('--leader-elect=true'));
    assert.ok(container.args.includes('--lease-namespace=mailfleet-system'));
    // The relays' NetworkPolicies admit the management port from these namespaces only.
    assert.ok(container.args.includes('--operator-namespace=mailfleet-system'));
    assert.ok(container.args.includes('--monitoring-namespaces=monitoring'));
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    // Requests and limits for every resource the scheduler and the kubelet account for.
    for (const resource of ['cpu', 'memory', 'ephemeral-storage']) {
      assert.ok(container.resources.requests[resource], `requests.${resource}`);
      assert.ok(container.resources.limits[resource], `limits.${resource}`);
    }
    // The replicas spread across nodes: a preferred anti-affinity on the hostname, own pods only.
    const spread =
      pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    assert.equal(spread.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(spread.labelSelector.matchLabels, spec.selector.matchLabels);
  });

  describe('the image: by digest when image.digest is set (what `npm run image` writes to dist/mailfleet-image.tar.digest)', () => {
    const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
    /** Every image the chart names: containers of every pod template, and the relays' --image. */
    const images = (manifests: Manifest[]) => {
      const named: string[] = [];
      for (const m of manifests) {
        const pod =
          m.kind === 'Deployment'
            ? m.spec?.template?.spec
            : m.kind === 'Job'
              ? m.spec?.template?.spec
              : undefined;
        for (const c of pod?.containers ?? []) {
          named.push(c.image);
          for (const arg of c.args ?? [])
            if (arg.startsWith('--image=')) named.push(arg.slice('--image='.length));
        }
      }
      return named;
    };
    const cases = [
      {
        name: 'no digest: the tag, by default the chart appVersion',
        args: [] as string[],
        image: 'ghcr.io/mailfleet/mailfleet:0.1.0',
      },
      { name: 'a tag', args: ['--set', 'image.tag=0.2.0'], image: 'ghcr.io/mailfleet/mailfleet:0.2.0' },
      {
        name: 'a digest',
        args: ['--set', `image.digest=${digest}`],
        image: `ghcr.io/mailfleet/mailfleet@${digest}`,
      },
      {
        name: 'a digest and a tag: the digest wins',
        args: ['--set', `image.digest=${digest},image.tag=0.2.0,image.repository=registry.example/mf`],
        image: `registry.example/mf@${digest}`,
      },
    ];
    for (const c of cases)
      test(c.name, () => {
        const named = images(render(c.args));
        // The operator container, its --image for the relays, and the helm test Job.
        assert.equal(named.length, 3, named.join(' '));
        for (const image of named) assert.equal(image, c.image);
      });
  });

  test('relays.networkPolicy.monitoringNamespaces reaches the operator as one flag, or none', () => {
    const args = (values: string[]) =>
      (one(render(values), 'Deployment').spec?.template.spec.containers[0].args as string[]).filter((a) =>
        a.startsWith('--monitoring-namespaces'),
      );
    assert.deepEqual(args(['--set', 'relays.networkPolicy.monitoringNamespaces={prom,obs}']), [
      '--monitoring-namespaces=prom,obs',
    ]);
    assert.deepEqual(args(['--set', 'relays.networkPolicy.monitoringNamespaces=null']), []);
  });

  test("relay pull secrets reach the operator as --image-pull-secrets: relays.imagePullSecrets, else the chart's imagePullSecrets, else none", () => {
    const cases = [
      { name: 'defaults', values: [] as string[], want: [] as string[] },
      {
        name: "the chart's imagePullSecrets (relays run the operator's image)",
        values: ['--set', 'imagePullSecrets[0].name=mirror,imagePullSecrets[1].name=backup'],
        want: ['--image-pull-secrets=mirror,backup'],
      },
      {
        name: 'relays.imagePullSecrets wins',
        values: ['--set', 'imagePullSecrets[0].name=mirror,relays.imagePullSecrets[0].name=relay-mirror'],
        want: ['--image-pull-secrets=relay-mirror'],
      },
    ];
    for (const c of cases) {
      const deployment = one(render(c.values), 'Deployment');
      const args = deployment.spec?.template.spec.containers[0].args as string[];
      assert.deepEqual(
        args.filter((a) => a.startsWith('--image-pull-secrets')),
        c.want,
        c.name,
      );
    }
  });

  test('operator.watchNamespaces: --namespaces, and Roles in those namespaces instead of the ClusterRole', () => {
    const manifests = render(['--set', 'operator.watchNamespaces={team-a,team-b}']);
    const args = one(manifests, 'Deployment').spec?.template.spec.containers[0].args as string[];
    assert.deepEqual(
      args.filter((a) => a.startsWith('--namespaces')),
      ['--namespaces=team-a,team-b'],
    );
    assert.deepEqual(find(manifests, 'ClusterRole'), []);
    assert.deepEqual(find(manifests, 'ClusterRoleBinding'), []);
    const roles = find(manifests, 'Role').map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
    assert.deepEqual(roles.sort(), [
      'mailfleet-system/fleet-mailfleet-leader-election',
      'team-a/fleet-mailfleet',
      'team-b/fleet-mailfleet',
    ]);
    const watched = find(manifests, 'Role').filter((r) => r.metadata.namespace === 'team-a')[0];
    const secretRule = (watched?.rules as { resources: string[] }[]).find((r) =>
      r.resources.includes('secrets'),
    );
    assert.ok(secretRule, 'the watched namespace grants Secret access');
    const defaults = render();
    assert.deepEqual(
      (one(defaults, 'Deployment').spec?.template.spec.containers[0].args as string[]).filter((a) =>
        a.startsWith('--namespaces'),
      ),
      [],
    );
    assert.equal(find(defaults, 'ClusterRole').length, 1);
  });

  test('the hardened profile: NetworkPolicies confine the operator and the helm test Job; the defaults have none', () => {
    assert.deepEqual(find(render(), 'NetworkPolicy'), []);
    const hardened = ['-f', path.join(CHART_DIR, 'values-hardened.yaml')];
    const policies = find(render(hardened), 'NetworkPolicy');
    assert.deepEqual(policies.map((p) => p.metadata.name).sort(), [
      'fleet-mailfleet',
      'fleet-mailfleet-test',
    ]);
    const operator = policies.find((p) => p.metadata.name === 'fleet-mailfleet')!.spec!;
    assert.deepEqual(operator.podSelector.matchLabels['app.kubernetes.io/component'], 'operator');
    assert.deepEqual(operator.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(operator.ingress[0].from[0].namespaceSelector.matchExpressions[0].values, [
      'mailfleet-system',
      'monitoring',
    ]);
    assert.deepEqual(operator.ingress[0].ports, [{ protocol: 'TCP', port: 8080 }]);
    type Rule = { to?: Record<string, any>[]; ports: { protocol: string; port: number }[] }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const egressPorts = (rules: Rule[]) =>
      rules.map((r) => r.ports.map((p) => `${p.protocol}/${p.port}`).join(',')).sort();
    assert.deepEqual(egressPorts(operator.egress), ['TCP/443,TCP/6443', 'TCP/8080', 'UDP/53,TCP/53']);
    const relays = (operator.egress as Rule[]).find((r) => r.ports[0]?.port === 8080);
    assert.equal(relays?.to?.[0]?.podSelector.matchLabels['app.kubernetes.io/name'], 'mailfleet-relay');
    const apiServer = (operator.egress as Rule[]).find((r) => r.ports[0]?.port === 443);
    assert.equal(apiServer?.to, undefined, 'without cidrs: the ports, any address');
    // With the API server's addresses and a DNS verification resolver on its own port.
    const pinned = find(
      render([
        ...hardened,
        '--set',
        'networkPolicy.apiServer.cidrs={10.96.0.1/32,192.168.0.10/32},operator.dnsVerification.server=10.0.0.53:5353',
      ]),
      'NetworkPolicy',
    ).find((p) => p.metadata.name === 'fleet-mailfleet')!.spec!;
    const pinnedRules = pinned.egress as Rule[];
    assert.deepEqual(pinnedRules.find((r) => r.ports[0]?.port === 443)?.to, [
      { ipBlock: { cidr: '10.96.0.1/32' } },
      { ipBlock: { cidr: '192.168.0.10/32' } },
    ]);
    assert.deepEqual(pinnedRules.find((r) => r.ports[0]?.port === 5353)?.to, [
      { ipBlock: { cidr: '10.0.0.53/32' } },
    ]);
    const test = policies.find((p) => p.metadata.name === 'fleet-mailfleet-test')!.spec!;
    assert.equal(test.podSelector.matchLabels['app.kubernetes.io/component'], 'test');
    assert.equal(test.ingress, undefined, 'nothing may reach the test pod');
    assert.equal(test.egress[1].to[0].podSelector.matchLabels['app.kubernetes.io/component'], 'operator');
  });

  test('operator.maxConcurrentRollouts reaches the operator (default 2 pools rolling at a time)', () => {
    const flag = (values: string[]) =>
      (one(render(values), 'Deployment').spec?.template.spec.containers[0].args as string[]).filter((a) =>
        a.startsWith('--max-concurrent-rollouts'),
      );
    assert.deepEqual(flag([]), ['--max-concurrent-rollouts=2']);
    assert.deepEqual(flag(['--set', 'operator.maxConcurrentRollouts=0']), ['--max-concurrent-rollouts=0']);
  });

  test('more than one replica without leader election is refused', () => {
    const result = helm(['template', 'fleet', CHART_DIR, '--set', 'operator.leaderElection.enabled=false']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /needs operator\.leaderElection\.enabled=true/);
  });

  test('dashboards: one ConfigMap per JSON file, labelled for the Grafana sidecar, label configurable', () => {
    const files = [...loadDashboards().keys()];
    const maps = find(
      render(['--set', 'dashboards.label=my_dashboards,dashboards.labelValue=yes']),
      'ConfigMap',
    );
    assert.equal(maps.length, files.length);
    for (const map of maps) {
      assert.equal(map.metadata.labels?.my_dashboards, 'yes');
      const [key, json] = Object.entries(map.data ?? {})[0] ?? [];
      assert.ok(files.includes(key ?? ''), key);
      assert.deepEqual(JSON.parse(json ?? ''), loadDashboards().get(key ?? ''));
    }
  });

  test('the PrometheusRule carries every alert of files/alerts.yaml, runbook base and disabled alerts applied', () => {
    const rule = one(
      render([
        ...ALL_FEATURES,
        '--set',
        'prometheusRule.runbookBaseURL=https://wiki.example/mail',
        '--set',
        'prometheusRule.disabledAlerts={MailfleetRelayDown}',
      ]),
      'PrometheusRule',
    );
    const rendered = (
      rule.spec?.groups as Array<{
        rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }>;
      }>
    ).flatMap((g) => g.rules);
    const source = loadAlerts().filter((a) => a.alert !== 'MailfleetRelayDown');
    assert.deepEqual(
      rendered.map((r) => r.alert),
      source.map((a) => a.alert),
    );
    for (const [i, r] of rendered.entries()) {
      assert.equal(r.expr, source[i]?.expr);
      assert.equal(r.annotations.runbook_url, `https://wiki.example/mail#${r.alert.toLowerCase()}`);
    }
  });

  test('every optional feature renders its objects', () => {
    const manifests = render(ALL_FEATURES);
    const monitor = one(manifests, 'ServiceMonitor');
    assert.equal(monitor.spec?.endpoints[0].port, 'http-metrics');
    assert.equal(monitor.spec?.endpoints[0].honorLabels, true);
    assert.equal(one(manifests, 'RelayPool').metadata.name, 'example');
    assert.deepEqual(one(manifests, 'SendingDomain').spec, {
      domain: 'example.com',
      poolRef: { name: 'example' },
    });
  });

  test('the helm test hook is a Job that checks /readyz and /metrics through the metrics Service', () => {
    const manifests = render();
    const job = one(manifests, 'Job');
    assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'test');
    const container = job.spec?.template.spec.containers[0];
    assert.equal(container.env[0].value, 'http://fleet-mailfleet-metrics.mailfleet-system.svc:8080');
    assert.match(container.command.join(' '), /\/readyz[\s\S]*\/metrics/);
    assert.equal(one(manifests, 'Service').metadata.name, 'fleet-mailfleet-metrics');
    assert.equal(job.spec?.ttlSecondsAfterFinished, 3600, 'a failed run is cleaned up after an hour');
    const kept = one(render(['--set', 'tests.ttlSecondsAfterFinished=60']), 'Job');
    assert.equal(kept.spec?.ttlSecondsAfterFinished, 60);
  });

  test('the operator PDB never lets a pod that is not ready block a node drain', () => {
    const budget = one(render(), 'PodDisruptionBudget');
    assert.equal(budget.spec?.unhealthyPodEvictionPolicy, 'AlwaysAllow');
    assert.equal(budget.spec?.maxUnavailable, 1);
  });
});

describe('against the real control plane', () => {
  let cp: ControlPlane | undefined;
  const plane = (): ControlPlane => {
    if (!cp) throw new Error('control plane did not start');
    return cp;
  };
  const kubeHelm = (args: string[]) => helm(args, { KUBECONFIG: plane().kubeconfig });

  before(async () => {
    cp = await startControlPlane({ log: (m) => process.stderr.write(`# controlplane: ${m}\n`) });
    await plane().kubectl(['apply', '--server-side', '-f', MONITORING_CRDS]);
    await plane().kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/servicemonitors.monitoring.coreos.com',
      'crd/prometheusrules.monitoring.coreos.com',
    ]);
  });
  after(async () => {
    await cp?.stop();
  });

  test('kubectl apply --dry-run=server accepts the CRDs and every rendered manifest', async () => {
    await plane().kubectl(['apply', '--server-side', '-f', path.join(CHART_DIR, 'crds')]);
    await plane().kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/relaypools.mailfleet.dev',
      'crd/sendingdomains.mailfleet.dev',
      'crd/ratelimits.mailfleet.dev',
    ]);
    await plane().kubectl(['create', 'namespace', 'mailfleet-system']);
    const rendered = helm([
      'template',
      'fleet',
      CHART_DIR,
      '--namespace',
      'mailfleet-system',
      ...ALL_FEATURES,
      // The optional Valkey for spec.sharedState (chart-valkey.test.ts checks what it renders).
      '--set',
      'sharedState.valkey.enabled=true',
    ]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const result = await plane().kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: rendered.stdout,
      allowFail: true,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /deployment\.apps\/fleet-mailfleet created \(server dry run\)/);
    assert.match(
      result.stdout,
      /prometheusrule\.monitoring\.coreos\.com\/fleet-mailfleet created \(server dry run\)/,
    );
    assert.match(result.stdout, /relaypool\.mailfleet\.dev\/example created \(server dry run\)/);
    assert.match(result.stdout, /statefulset\.apps\/fleet-mailfleet-valkey created \(server dry run\)/);
  });

  test('helm install: the operator becomes ready, helm test passes, upgrade and uninstall behave', async () => {
    const install = kubeHelm([
      'install',
      'mf',
      CHART_DIR,
      '--namespace',
      'mf',
      '--create-namespace',
      '--wait',
      '--timeout',
      '180s',
      '--set',
      'dashboards.enabled=true,prometheusRule.enabled=true,metrics.serviceMonitor.enabled=true',
    ]);
    assert.equal(install.code, 0, `${install.stdout}${install.stderr}`);
    assert.match(
      install.stdout,
      /kubectl -n mf rollout status deployment\/mf-mailfleet/,
      'NOTES.txt tells what to do next',
    );
    for (const crd of ['relaypools', 'sendingdomains', 'ratelimits']) {
      const established = await plane().kubectl([
        'get',
        `crd/${crd}.mailfleet.dev`,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Established")].status}',
      ]);
      assert.equal(established.stdout, 'True');
    }
    const ready = await plane().kubectl([
      '-n',
      'mf',
      'get',
      'deployment/mf-mailfleet',
      '-o',
      'jsonpath={.status.readyReplicas}',
    ]);
    assert.equal(ready.stdout, '2');

    const helmTest = kubeHelm(['test', 'mf', '--namespace', 'mf', '--timeout', '120s']);
    assert.equal(helmTest.code, 0, `${helmTest.stdout}${helmTest.stderr}`);
    assert.match(helmTest.stdout, /mf-mailfleet-test-healthy[\s\S]*Phase:\s+Succeeded/);

    const upgrade = kubeHelm([
      'upgrade',
      'mf',
      CHART_DIR,
      '--namespace',
      'mf',
      '--wait',
      '--timeout',
      '180s',
      '--reuse-values',
      '--set',
      'operator.replicas=3,operator.logLevel=debug,dashboards.enabled=false',
    ]);
    assert.equal(upgrade.code, 0, `${upgrade.stdout}${upgrade.stderr}`);
    const deployment = JSON.parse(
      (await plane().kubectl(['-n', 'mf', 'get', 'deployment/mf-mailfleet', '-o', 'json'])).stdout,
    );
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(deployment.status.readyReplicas, 3);
    assert.ok(deployment.spec.template.spec.containers[0].args.includes('--log-level=debug'));
    const maps = await plane().kubectl([
      '-n',
      'mf',
      'get',
      'configmap',
      '-l',
      'grafana_dashboard=1',
      '-o',
      'name',
    ]);
    assert.equal(maps.stdout.trim(), '', 'disabling dashboards removes their ConfigMaps');

    const uninstall = kubeHelm(['uninstall', 'mf', '--namespace', 'mf', '--wait', '--timeout', '120s']);
    assert.equal(uninstall.code, 0, `${uninstall.stdout}${uninstall.stderr}`);
    const left = await plane().kubectl([
      '-n',
      'mf',
      'get',
      'deployment,service,serviceaccount,role,rolebinding,pdb,prometheusrule,servicemonitor',
      '-l',
      'app.kubernetes.io/instance=mf',
      '-o',
      'name',
    ]);
    assert.equal(left.stdout.trim(), '');
    const clusterRole = await plane().kubectl(['get', 'clusterrole/mf-mailfleet'], { allowFail: true });
    assert.notEqual(clusterRole.code, 0);
    // Helm never deletes CRDs from crds/ (that would delete every RelayPool): they stay.
    const crd = await plane().kubectl(['get', 'crd/relaypools.mailfleet.dev', '-o', 'name']);
    assert.equal(crd.stdout.trim(), 'customresourcedefinition.apiextensions.k8s.io/relaypools.mailfleet.dev');
  });
});
