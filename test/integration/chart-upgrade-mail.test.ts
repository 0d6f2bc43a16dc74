// An upgrade as docs/install.md says, with mail queued in running relays. The previous release
// (chart 0.1.0, its package; image 0.1.0, the program files of the commit it was packaged from) is
// installed and runs for real on the test kubelet: the operator pods (their args, ServiceAccount and
// RBAC as the chart renders them) and the relay pods they make. Mail is queued for a destination
// that defers; then the CRDs are applied server-side and `helm upgrade` moves to this chart with a
// new image, which rolls the operator and then every relay: the 0.1.0 relays hand their queue to the
// new ones. The pool then takes a field only the new CRD knows (another rollout), and the
// destination recovers. Ledger: acknowledged, delivered, duplicates, lost = 0.
// MAILFLEET_UPGRADE_MESSAGES sets the message count (default 600).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, startControlPlane } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { helmAsync } from '../helpers/helm.ts';
import { LOCAL_NODE_LABEL, readyPods, startKubelet, type Kubelet } from '../helpers/operator/kubelet.ts';
import { departedCleanly, queueDeferred, recoverAndCount } from '../helpers/operator/ledger.ts';
import { CHART_DIR } from '../helpers/prometheus/chart-files.ts';
import { startScripted, waitFor, type ScriptedUpstream } from '../helpers/relay/peers.ts';

const PREVIOUS_CHART = path.join(REPO_ROOT, 'test/fixtures/charts/mailfleet-0.1.0.tgz');
/**
 * What image 0.1.0 holds besides node_modules: `git archive` of bin/, operator/src, relay/src and
 * package.json at c4ed861 (the commit chart 0.1.0 was packaged from), test files excluded. It runs
 * with this checkout's node_modules (0.1.0's production dependencies are a subset).
 */
const PREVIOUS_PROGRAM = path.join(REPO_ROOT, 'test/fixtures/images/mailfleet-0.1.0.tar.gz');
const REPOSITORY = 'ghcr.io/mailfleet/mailfleet';
const OLD_IMAGE = `${REPOSITORY}:0.1.0`;
const NEW_IMAGE = `${REPOSITORY}:0.2.0`;
const RELEASE_NS = 'mf';
const NS = 'mail';
const N = Number(process.env.MAILFLEET_UPGRADE_MESSAGES) || 600;

let cp: ControlPlane | undefined;
let kubelet: Kubelet | undefined;
let upstream: ScriptedUpstream | undefined;
let work = '';
let oldRoot = '';
const plane = (): ControlPlane => {
  if (!cp) throw new Error('control plane did not start');
  return cp;
};
const k = async (args: string[], input?: string) => {
  const r = await plane().kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const kubeHelm = (args: string[]) => helmAsync(args, { KUBECONFIG: plane().kubeconfig });

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'mailfleet-upgrade-mail-'));
  execFileSync('tar', ['-xzf', PREVIOUS_CHART, '-C', work]);
  oldRoot = path.join(work, 'image-0.1.0');
  execFileSync('mkdir', [oldRoot]);
  execFileSync('tar', ['-xzf', PREVIOUS_PROGRAM, '-C', oldRoot]);
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(oldRoot, 'node_modules'));
  // The operator pods on the test kubelet, as a cluster's nodeSelector would place them.
  writeFileSync(
    path.join(work, 'values.json'),
    JSON.stringify({ operator: { nodeSelector: { [LOCAL_NODE_LABEL]: 'true' } } }),
  );
  cp = await startControlPlane({ nodes: 1, log: (m) => process.stderr.write(`# controlplane: ${m}\n`) });
  upstream = await startScripted();
  kubelet = await startKubelet(cp, {
    hosts: { 'dest.example': '127.0.0.1' },
    images: { [OLD_IMAGE]: oldRoot, [NEW_IMAGE]: REPO_ROOT },
    configure: (config) => {
      const delivery = config.delivery as Record<string, unknown>;
      delivery.dns = { servers: [kubelet?.dns ?? ''] };
      delivery.directPort = upstream?.port;
    },
  });
});

after(async () => {
  await kubelet?.stop();
  await upstream?.stop();
  await cp?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Pods of the release's operator and of the pool, with the program each runs. */
const running = (component: 'operator' | 'pool') =>
  [...(kubelet?.running.values() ?? [])].filter(
    (r) =>
      r.terminatingSince === undefined &&
      (component === 'pool'
        ? r.pod.metadata.labels?.['mailfleet.dev/pool'] === 'outbound'
        : r.pod.metadata.namespace === RELEASE_NS),
  );

test(`helm upgrade from chart 0.1.0 with ${N} deferred messages in its relays: CRDs, operator and relays upgraded, nothing lost`, async () => {
  assert.ok(kubelet && upstream);
  const values = path.join(work, 'values.json');
  const install = await kubeHelm([
    'install',
    'mf',
    path.join(work, 'mailfleet'),
    '-n',
    RELEASE_NS,
    '--create-namespace',
    '-f',
    values,
    '--wait',
    '--timeout',
    '300s',
  ]);
  assert.equal(install.code, 0, `${install.stdout}${install.stderr}`);
  assert.equal(running('operator').length, 2);
  assert.ok(
    running('operator').every((r) => r.appRoot === oldRoot),
    'the 0.1.0 operators run image 0.1.0',
  );

  await k(['create', 'namespace', NS]);
  for (const object of [
    {
      kind: 'RelayPool',
      metadata: { name: 'outbound', namespace: NS },
      spec: {
        replicas: 2,
        allowedNetworks: ['127.0.0.0/8'],
        delivery: { mode: 'Direct' },
        retry: { firstRetry: '3s', maxBackoff: '5s' },
        drainTimeout: '60s',
        scheduling: { nodeSelector: { [LOCAL_NODE_LABEL]: 'true' } },
      },
    },
    {
      kind: 'SendingDomain',
      metadata: { name: 'outbound-example', namespace: NS },
      spec: {
        domain: 'example.com',
        poolRef: { name: 'outbound' },
        dkim: { selector: 's1', algorithm: 'ed25519-sha256' },
      },
    },
  ])
    await k(
      ['apply', '--validate=strict', '-f', '-'],
      JSON.stringify({ apiVersion: 'mailfleet.dev/v1alpha1', ...object }),
    );
  const oldRelays = await readyPods(kubelet, 'outbound', 2, 180_000);
  assert.ok(
    oldRelays.every((r) => r.appRoot === oldRoot && r.pod.spec.containers[0]?.image === OLD_IMAGE),
    'the 0.1.0 operator made relays of image 0.1.0',
  );
  const acknowledged = await queueDeferred(upstream, oldRelays, N, 'u');
  assert.equal(acknowledged.length, N);
  const oldRelayNames = new Set(oldRelays.map((r) => `${NS}/${r.pod.metadata.name}`));
  const oldOperatorNames = new Set(running('operator').map((r) => `${RELEASE_NS}/${r.pod.metadata.name}`));

  // The documented path: CRDs first (server-side; Helm created them, hence --force-conflicts), then
  // the chart, with a new operator image that the relays follow.
  const started = Date.now();
  await k(['apply', '--server-side', '--force-conflicts', '-f', path.join(CHART_DIR, 'crds')]);
  await k(['wait', '--for=condition=Established', '--timeout=60s', 'crd/relaypools.mailfleet.dev']);
  const upgrade = await kubeHelm([
    'upgrade',
    'mf',
    CHART_DIR,
    '-n',
    RELEASE_NS,
    '-f',
    values,
    '--set',
    'image.tag=0.2.0',
    '--wait',
    '--timeout',
    '300s',
  ]);
  assert.equal(upgrade.code, 0, `${upgrade.stdout}${upgrade.stderr}`);
  // helm's --wait ends when the new pods are ready; the old ones may still be stopping.
  await waitFor(
    () => running('operator').length === 2 && running('operator').every((r) => r.appRoot === REPO_ROOT),
    120_000,
    'the operators to run the new image',
  );

  // The new operator renders image 0.2.0: both 0.1.0 relays drain and hand off.
  const gone = () => kubelet!.terminations.filter((t) => oldRelayNames.has(t.pod));
  await waitFor(() => gone().length === 2, 300_000, 'both 0.1.0 relays gone');
  const upgradeMs = Date.now() - started;
  const { handedOff, maxDrainMs } = departedCleanly(gone());
  // The first may hand some of its queue to the other 0.1.0 relay, which hands it on again.
  assert.ok(handedOff >= N, `handed off ${handedOff} >= ${N}`);
  // An old operator's termination is recorded when its process has exited: waited for, not read once.
  const operatorsGone = () => kubelet!.terminations.filter((t) => oldOperatorNames.has(t.pod));
  await waitFor(() => operatorsGone().length === 2, 120_000, 'both old operators gone');
  for (const t of operatorsGone()) assert.equal(t.signal, null, `${t.pod} stopped before SIGKILL`);
  const newRelays = await readyPods(kubelet, 'outbound', 2, 180_000);
  assert.ok(
    newRelays.every((r) => r.appRoot === REPO_ROOT && r.pod.spec.containers[0]?.image === NEW_IMAGE),
    'the new relays run image 0.2.0',
  );

  // A field only the new CRD knows, on the pool made under 0.1.0: accepted, and the spool's new
  // size limit rolls the relays once more while the mail is still deferred.
  const before = kubelet.terminations.length;
  await k([
    '-n',
    NS,
    'patch',
    'rp/outbound',
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { queue: { sizeLimit: '2Gi' } } }),
  ]);
  const secondRoll = () =>
    kubelet!.terminations
      .slice(before)
      .filter((t) => newRelays.some((r) => t.pod.endsWith(r.pod.metadata.name)));
  await waitFor(() => secondRoll().length === 2, 300_000, 'the 0.2.0 relays rolled for the new field');
  const second = departedCleanly(secondRoll());
  const sized = await readyPods(kubelet, 'outbound', 2, 180_000);
  assert.ok(
    sized.every((r) =>
      r.pod.spec.volumes?.some((v) => v.name === 'spool' && JSON.stringify(v.emptyDir).includes('2Gi')),
    ),
    'the relays run with the new spool size limit',
  );

  await recoverAndCount(upstream, 'helm upgrade 0.1.0 -> current', acknowledged, {
    handedOffByOldRelays: handedOff,
    handedOffAfterCrdField: second.handedOff,
    upgradeMs,
    maxDrainMs: Math.max(maxDrainMs, second.maxDrainMs),
  });
});
