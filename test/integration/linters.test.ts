// What the ecosystem's manifest linters say: kubeconform -strict (Kubernetes 1.36's schemas and the
// CRDs') and kube-score, built from the Go module proxy by test/linters/build.sh, on the chart
// rendered with the defaults and with every optional feature, and on the objects desiredState()
// writes for representative pools. kubeconform: every document valid. kube-score: zero WARNING or
// CRITICAL; every check the suite does not follow is in test/linters/kube-score.yaml with the reason.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import { templateChart } from '../helpers/helm.ts';
import { CHART_DIR } from '../helpers/prometheus/chart-files.ts';
import { REPRESENTATIVE_POOLS, crdSchemas, desiredManifests, kubernetesSchemas } from '../helpers/linters.ts';

const LINTERS = path.join(REPO_ROOT, 'test/linters');
const ALL_FEATURES =
  'metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true,examples.enabled=true,dashboards.enabled=true,sharedState.valkey.enabled=true';

interface KubeScoreConfig {
  flags: { flag: string; reason: string }[];
  ignore: { test: string; reason: string }[];
}
const config = parse(readFileSync(path.join(LINTERS, 'kube-score.yaml'), 'utf8')) as KubeScoreConfig;

let bin = '';
const schemaDir = mkdtempSync(path.join(os.tmpdir(), 'mailfleet-kubeconform-'));
before(() => {
  // Idempotent: exits at once when the binaries are cached (scripts/test.ts builds them first).
  execFileSync(path.join(LINTERS, 'build.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
  bin = execFileSync(path.join(LINTERS, 'build.sh'), ['--bin-dir'], { encoding: 'utf8' }).trim();
  // kubeconform's schemas, offline: Kubernetes' own OpenAPI document and our CRDs (plus the
  // monitoring CRDs the chart's optional ServiceMonitor and PrometheusRule use), made strict.
  const crdFiles = [
    ...['relaypools', 'sendingdomains', 'ratelimits'].map((n) =>
      path.join(REPO_ROOT, `crds/mailfleet.dev_${n}.yaml`),
    ),
    path.join(REPO_ROOT, 'test/helpers/prometheus/monitoring-crds.yaml'),
  ];
  const crds = crdFiles.flatMap((f) => parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS()));
  const swagger = JSON.parse(readFileSync(path.join(bin, 'kubernetes-swagger.json'), 'utf8'));
  for (const [name, schema] of [...kubernetesSchemas(swagger), ...crdSchemas(crds)])
    writeFileSync(path.join(schemaDir, name), JSON.stringify(schema));
});
after(() => rmSync(schemaDir, { recursive: true, force: true }));

/** kubeconform -strict's verdict per document: errors and invalid documents, and how many were valid. */
function kubeconform(manifests: string): { problems: string[]; valid: number } {
  const result = spawnSync(
    path.join(bin, 'kubeconform'),
    [
      '-strict',
      '-summary',
      '-output',
      'json',
      '-schema-location',
      `${schemaDir}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
      '-',
    ],
    { input: manifests, encoding: 'utf8' },
  );
  const out = JSON.parse(result.stdout) as {
    resources: { kind: string; name: string; status: string; msg: string }[];
    summary: { valid: number };
  };
  const problems = out.resources
    .filter((r) => r.status !== 'statusValid')
    .map((r) => `${r.kind}/${r.name}: ${r.status} ${r.msg}`);
  return { problems, valid: out.summary.valid };
}

const HARDENED = path.join(CHART_DIR, 'values-hardened.yaml');

const renderChart = templateChart;

/** kube-score's findings other than OK and SKIPPED, one line each (ci output format). */
function kubeScore(manifests: string, options: string[]): string[] {
  const result = spawnSync(
    path.join(bin, 'kube-score'),
    ['score', '--output-format', 'ci', ...options, '-'],
    {
      input: manifests,
      encoding: 'utf8',
    },
  );
  assert.ok(
    result.status === 0 || result.status === 1,
    `kube-score exited ${result.status}: ${result.stderr}`,
  );
  assert.match(result.stdout, /^\[OK\]/m, 'kube-score scored something');
  return result.stdout.split('\n').filter((l) => /^\[(WARNING|CRITICAL)\]/.test(l));
}
const configured = (): string[] => [
  ...config.flags.map((f) => f.flag),
  ...config.ignore.flatMap((i) => ['--ignore-test', i.test]),
];

const subjects = [
  { name: 'the chart with the default values', manifests: () => renderChart([]) },
  { name: 'the chart with every optional feature', manifests: () => renderChart([ALL_FEATURES]) },
  { name: 'the chart with the hardened profile', manifests: () => renderChart([ALL_FEATURES], [HARDENED]) },
  {
    name: 'the chart in namespaced mode (Roles in two namespaces)',
    manifests: () => renderChart(['operator.watchNamespaces={team-a,team-b}']),
  },
  ...REPRESENTATIVE_POOLS.map((p) => ({
    name: `the operator's objects for a pool: ${p.name}`,
    manifests: () => desiredManifests(p.spec),
  })),
];

describe('kubeconform -strict', () => {
  for (const s of subjects) {
    test(`${s.name}: every document valid`, () => {
      const manifests = s.manifests();
      const { problems, valid } = kubeconform(manifests);
      assert.deepEqual(problems, []);
      assert.equal(valid, parseAllDocuments(manifests).filter((d) => d.toJS()?.kind).length);
    });
  }

  const relayPool = (spec: string) =>
    `apiVersion: mailfleet.dev/v1alpha1\nkind: RelayPool\nmetadata:\n  name: p\nspec:\n${spec}`;
  const cases = [
    {
      name: 'a label written twice',
      doc: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    a: x\n    a: y\n',
      error: /already set in map|duplicate/i,
    },
    {
      name: 'an unknown field of a Deployment',
      doc: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replica: 2\n',
      error: /replica/,
    },
    { name: 'an unknown field of a RelayPool', doc: relayPool('  replica: 2\n'), error: /replica/ },
    {
      name: 'a RelayPool with replicas as a string',
      doc: relayPool("  replicas: 'two'\n"),
      error: /replicas/,
    },
  ];
  for (const c of cases) {
    test(`refuses ${c.name} (the schemas are really applied)`, () => {
      const { problems } = kubeconform(c.doc);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0] ?? '', c.error);
    });
  }
});

describe('kube-score', () => {
  test('every suppression says why, and names a check kube-score has', () => {
    const list = spawnSync(path.join(bin, 'kube-score'), ['list'], { encoding: 'utf8' }).stdout;
    const known = new Set(list.split('\n').map((l) => l.split(',')[0]));
    for (const i of config.ignore) {
      assert.ok(known.has(i.test), `${i.test} is not a kube-score check`);
      assert.ok(i.reason.length > 40, `${i.test}: a reason`);
    }
    for (const f of config.flags) assert.ok(f.reason.length > 40, `${f.flag}: a reason`);
  });

  for (const s of subjects) {
    test(`${s.name}: no warning or critical finding`, () => {
      assert.deepEqual(kubeScore(s.manifests(), configured()), []);
    });
  }

  test('the hardened profile gives every chart pod a NetworkPolicy: pod-networkpolicy passes unsuppressed', () => {
    const withoutThat = [
      ...config.flags.map((f) => f.flag),
      ...config.ignore
        .filter((i) => i.test !== 'pod-networkpolicy')
        .flatMap((i) => ['--ignore-test', i.test]),
    ];
    assert.deepEqual(kubeScore(renderChart([], [HARDENED]), withoutThat), []);
    const findings = kubeScore(renderChart([]), withoutThat);
    assert.ok(
      findings.some((l) => /NetworkPolicy/i.test(l)),
      `the defaults have none, and kube-score says so: ${findings.join('\n')}`,
    );
  });

  test('the checks fail without the suppressions (the linter really reads these objects)', () => {
    const findings = kubeScore(desiredManifests({ autoscaling: { minReplicas: 2, maxReplicas: 10 } }), []);
    assert.ok(
      findings.some((l) => /HPA target does not match anything/.test(l)),
      findings.join('\n'),
    );
    assert.ok(
      findings.some((l) => /host podAntiAffinity/.test(l)),
      findings.join('\n'),
    );
  });

  test('the relays carry what the suppressions promise: a spread over hostname and zone, a CPU request', () => {
    for (const p of REPRESENTATIVE_POOLS) {
      const workload = desiredManifests(p.spec)
        .split(/^---$/m)
        .map((d) => parse(d))
        .find((o) => o?.kind === 'Deployment' || o?.kind === 'StatefulSet');
      const pod = workload.spec.template.spec;
      assert.deepEqual(
        pod.topologySpreadConstraints.map((c: { topologyKey: string }) => c.topologyKey).sort(),
        ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'],
        p.name,
      );
      assert.ok(pod.containers[0].resources.requests.cpu, p.name);
      assert.ok(pod.containers[0].resources.requests['ephemeral-storage'], p.name);
    }
  });
});
