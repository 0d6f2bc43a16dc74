// Upgrading a release as docs/install.md says, against the real control plane: the previous chart
// version (0.1.0, its released package) installed, a RelayPool created, then the documented path to the
// current chart. Helm never upgrades crds/, so `helm upgrade` alone leaves the old CRDs (a new
// field is refused); `kubectl apply --server-side --force-conflicts -f charts/mailfleet/crds/`
// first brings the new schema, keeps every RelayPool, and the upgrade then succeeds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT, startControlPlane } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { helm } from '../helpers/helm.ts';
import { CHART_DIR } from '../helpers/prometheus/chart-files.ts';

/**
 * Chart 0.1.0 as `helm package` made it from c4ed861 (main when 0.1.0 was current: before
 * spec.queue.sizeLimit and spec.imagePullSecrets). A packaged file, not `git archive`, so the test
 * also runs in a shallow clone or an exported tree.
 */
const PREVIOUS_CHART = path.join(REPO_ROOT, 'test/fixtures/charts/mailfleet-0.1.0.tgz');
const NS = 'mf';

let cp: ControlPlane | undefined;
let work = '';
const plane = (): ControlPlane => {
  if (!cp) throw new Error('control plane did not start');
  return cp;
};
const kubeHelm = (args: string[]) => helm(args, { KUBECONFIG: plane().kubeconfig });

/** A RelayPool applied strictly (unknown fields refused, as kubectl does by default). */
const applyPool = (name: string, spec: Record<string, unknown>) =>
  plane().kubectl(['apply', '--validate=strict', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name, namespace: NS },
      spec: { replicas: 1, ...spec },
    }),
    allowFail: true,
  });

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'mailfleet-upgrade-'));
  // The previous chart, exactly as it was packaged.
  execFileSync('tar', ['-xzf', PREVIOUS_CHART, '-C', work]);
  cp = await startControlPlane({ log: (m) => process.stderr.write(`# controlplane: ${m}\n`) });
});

after(async () => {
  await cp?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('from chart 0.1.0: CRDs applied server-side before helm upgrade bring the new fields and keep every RelayPool', async () => {
  const previous = path.join(work, 'mailfleet');
  const current = parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { version: string };
  assert.equal(
    (parse(readFileSync(path.join(previous, 'Chart.yaml'), 'utf8')) as { version: string }).version,
    '0.1.0',
  );
  assert.notEqual(current.version, '0.1.0', 'the chart changed its CRDs: its version moved on');

  const install = kubeHelm([
    'install',
    'mf',
    previous,
    '-n',
    NS,
    '--create-namespace',
    '--wait',
    '--timeout',
    '180s',
  ]);
  assert.equal(install.code, 0, `${install.stdout}${install.stderr}`);
  const before = await applyPool('outbound', { allowedNetworks: ['10.0.0.0/8'] });
  assert.equal(before.code, 0, before.stderr);
  // The 0.1.0 CRD does not know the new field.
  const early = await applyPool('sized', { queue: { sizeLimit: '2Gi' } });
  assert.notEqual(early.code, 0);
  assert.match(early.stderr, /unknown field "spec\.queue\.sizeLimit"/);

  // helm upgrade alone: the release moves on, the CRDs do not (Helm never upgrades crds/).
  const helmOnly = kubeHelm(['upgrade', 'mf', CHART_DIR, '-n', NS, '--wait', '--timeout', '180s']);
  assert.equal(helmOnly.code, 0, `${helmOnly.stdout}${helmOnly.stderr}`);
  const stillOld = await applyPool('sized', { queue: { sizeLimit: '2Gi' } });
  assert.notEqual(stillOld.code, 0, 'helm upgrade does not touch the CRDs');

  // The documented path: CRDs first (server-side; Helm created them, hence --force-conflicts).
  const crds = await plane().kubectl(
    ['apply', '--server-side', '--force-conflicts', '-f', path.join(CHART_DIR, 'crds')],
    { allowFail: true },
  );
  assert.equal(crds.code, 0, crds.stderr);
  await plane().kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/relaypools.mailfleet.dev',
  ]);
  const upgrade = kubeHelm(['upgrade', 'mf', CHART_DIR, '-n', NS, '--wait', '--timeout', '180s']);
  assert.equal(upgrade.code, 0, `${upgrade.stdout}${upgrade.stderr}`);

  const sized = await applyPool('sized', {
    queue: { sizeLimit: '2Gi' },
    imagePullSecrets: [{ name: 'mirror' }],
  });
  assert.equal(sized.code, 0, sized.stderr);
  const stored = JSON.parse((await plane().kubectl(['-n', NS, 'get', 'rp/sized', '-o', 'json'])).stdout);
  assert.equal(stored.spec.queue.sizeLimit, '2Gi');
  assert.deepEqual(stored.spec.imagePullSecrets, [{ name: 'mirror' }]);
  const kept = JSON.parse((await plane().kubectl(['-n', NS, 'get', 'rp/outbound', '-o', 'json'])).stdout);
  assert.deepEqual(kept.spec.allowedNetworks, ['10.0.0.0/8'], 'the pool made under 0.1.0 is intact');

  const history = kubeHelm(['history', 'mf', '-n', NS, '-o', 'json']);
  const charts = (JSON.parse(history.stdout) as { chart: string; status: string }[]).map((r) => r.chart);
  assert.deepEqual(charts, [
    'mailfleet-0.1.0',
    `mailfleet-${current.version}`,
    `mailfleet-${current.version}`,
  ]);
  const ready = await plane().kubectl([
    '-n',
    NS,
    'get',
    'deployment/mf-mailfleet',
    '-o',
    'jsonpath={.status.readyReplicas}',
  ]);
  assert.equal(ready.stdout, '2');
});
