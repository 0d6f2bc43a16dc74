// What the ecosystem's manifest linters say: kube-score, built from the Go module proxy by
// test/linters/build.sh, on the chart rendered with the defaults and with every optional feature,
// and on the objects desiredState() writes for representative pools. Zero WARNING or CRITICAL:
// every check the suite does not follow is in test/linters/kube-score.yaml with the reason.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT, cacheBinDir, resolveBinaries } from '../controlplane/cluster.ts';
import { CHART_DIR } from '../helpers/prometheus/chart-files.ts';
import { REPRESENTATIVE_POOLS, desiredManifests } from '../helpers/linters.ts';

const LINTERS = path.join(REPO_ROOT, 'test/linters');
const ALL_FEATURES =
  'metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true,examples.enabled=true,dashboards.enabled=true';

interface KubeScoreConfig {
  flags: { flag: string; reason: string }[];
  ignore: { test: string; reason: string }[];
}
const config = parse(readFileSync(path.join(LINTERS, 'kube-score.yaml'), 'utf8')) as KubeScoreConfig;

let bin = '';
before(() => {
  // Idempotent: exits at once when the binaries are cached (scripts/test.ts builds them first).
  execFileSync(path.join(LINTERS, 'build.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
  bin = execFileSync(path.join(LINTERS, 'build.sh'), ['--bin-dir'], { encoding: 'utf8' }).trim();
});

const helmBin = (): string => {
  const cached = path.join(cacheBinDir(), 'helm');
  if (existsSync(cached)) return cached;
  const helm = resolveBinaries({ build: false }).helm;
  if (!helm) throw new Error('helm is not built: run test/controlplane/build.sh');
  return helm;
};

function renderChart(set: string[]): string {
  const result = spawnSync(
    helmBin(),
    ['template', 'fleet', CHART_DIR, '--namespace', 'mailfleet-system', ...set.flatMap((s) => ['--set', s])],
    {
      encoding: 'utf8',
      env: {
        ...process.env,
        HELM_CACHE_HOME: '/tmp/mailfleet-helm/cache',
        HELM_CONFIG_HOME: '/tmp/mailfleet-helm/config',
        HELM_DATA_HOME: '/tmp/mailfleet-helm/data',
      },
    },
  );
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

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
  ...REPRESENTATIVE_POOLS.map((p) => ({
    name: `the operator's objects for a pool: ${p.name}`,
    manifests: () => desiredManifests(p.spec),
  })),
];

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
