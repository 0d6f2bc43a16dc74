// Integration tests of the test control plane (dev/controlplane/) and of the mailfleet.dev CRDs
// against a real kube-apiserver: workloads become Available on kwok nodes, garbage collection,
// an apiserver restart mid-test, ServiceAccount kubeconfigs, kubectl, CRD validation (CEL).
//
// Runs against MAILFLEET_TEST_KUBECONFIG or KUBEBUILDER_ASSETS when set (see docs/testing.md).
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, startControlPlane } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane, ExecResult, KubectlOptions } from '../../dev/controlplane/cluster.ts';

const CRD_DIR = path.join(REPO_ROOT, 'crds');
const SAMPLES_DIR = path.join(CRD_DIR, 'samples');
const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

let cp: ControlPlane | undefined;

before(async () => {
  const started = Date.now();
  cp = await startControlPlane({ log: (m) => process.stderr.write(`# controlplane: ${m}\n`) });
  process.stderr.write(
    `# controlplane: ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${cp.server})\n`,
  );
});

after(async () => {
  await cp?.stop();
});

function plane(): ControlPlane {
  if (!cp) throw new Error('control plane did not start (see the before hook)');
  return cp;
}

function kubectl(args: string[], options?: KubectlOptions): Promise<ExecResult> {
  return plane().kubectl(args, options);
}

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Skips (saying why) a test that needs components a KUBEBUILDER_ASSETS setup may lack. */
function needs(t: TestContext, ...wanted: ('controllers' | 'scheduler' | 'nodes')[]): boolean {
  const missing = wanted.filter((c) => !plane().capabilities[c]);
  if (missing.length === 0) return true;
  t.skip(
    `needs ${missing.join(', ')}; only ${Object.keys(plane().binaries).join(', ')} found ` +
      '(KUBEBUILDER_ASSETS): run dev/controlplane/build.sh for kube-controller-manager, kube-scheduler and kwok',
  );
  return false;
}

let namespaceCounter = 0;
async function freshNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${++namespaceCounter}`;
  await kubectl(['create', 'namespace', name]);
  if (!plane().capabilities.controllers) return name;
  // The serviceaccount controller creates "default" in every namespace; pods need it.
  await eventually(`serviceaccount ${name}/default`, async () =>
    (await kubectl(['-n', name, 'get', 'serviceaccount', 'default'], { allowFail: true })).code === 0
      ? true
      : undefined,
  );
  return name;
}

function deployment(name: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            { name: 'pause', image: PAUSE_IMAGE, resources: { requests: { cpu: '10m', memory: '16Mi' } } },
          ],
        },
      },
    },
  });
}

async function names(namespace: string, kinds: string, selector: string): Promise<string[]> {
  const out = (await kubectl(['-n', namespace, 'get', kinds, '-l', selector, '-o', 'name'])).stdout.trim();
  return out === '' ? [] : out.split('\n');
}

test('kubectl works against the control plane', async () => {
  const version = JSON.parse((await kubectl(['version', '-o', 'json'])).stdout) as {
    serverVersion?: { gitVersion?: string; major?: string; minor?: string };
  };
  assert.match(version.serverVersion?.gitVersion ?? '', /^v1\.\d+\.\d+/, 'server reports a real version');
  if (!plane().external && !process.env.KUBEBUILDER_ASSETS) {
    assert.ok(Number(version.serverVersion?.minor) >= 34, 'kube-apiserver >= 1.34');
  }
  assert.equal((await kubectl(['auth', 'can-i', '*', '*', '--all-namespaces'])).stdout.trim(), 'yes');
  const nodes = JSON.parse((await kubectl(['get', 'nodes', '-o', 'json'])).stdout) as {
    items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[];
  };
  const ready = nodes.items.filter((n) =>
    n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  if (plane().capabilities.nodes)
    assert.ok(ready.length > 0, `a Ready node among ${nodes.items.map((n) => n.metadata.name).join(', ')}`);
  const apis = (await kubectl(['api-resources', '-o', 'name'])).stdout;
  assert.match(apis, /^deployments\.apps$/m);
});

test('a Deployment becomes Available on the fake nodes and deleting it garbage-collects its ReplicaSet and pods', async (t: TestContext) => {
  if (!needs(t, 'controllers', 'nodes')) return;
  const ns = await freshNamespace('deploy');
  await kubectl(['-n', ns, 'apply', '-f', '-'], { input: deployment('web', 2) });
  await kubectl(['-n', ns, 'wait', '--for=condition=Available', 'deployment/web', '--timeout=90s']);
  const pods = JSON.parse(
    (await kubectl(['-n', ns, 'get', 'pods', '-l', 'app=web', '-o', 'json'])).stdout,
  ) as {
    items: { spec: { nodeName?: string }; status: { phase?: string; podIP?: string } }[];
  };
  assert.equal(pods.items.length, 2);
  for (const pod of pods.items) {
    assert.ok(pod.spec.nodeName, 'pod is scheduled');
    assert.equal(pod.status.phase, 'Running');
    assert.ok(pod.status.podIP, 'pod has an IP');
  }
  assert.equal((await names(ns, 'replicasets', 'app=web')).length, 1);

  await kubectl(['-n', ns, 'delete', 'deployment', 'web', '--wait=true']);
  await eventually(
    'ReplicaSet and pods of the deleted Deployment to be garbage-collected',
    async () => ((await names(ns, 'replicasets,pods', 'app=web')).length === 0 ? true : undefined),
    90_000,
  );
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

test('a StatefulSet becomes Ready', async (t: TestContext) => {
  if (!needs(t, 'controllers', 'nodes')) return;
  const ns = await freshNamespace('sts');
  const sts = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'db' },
    spec: {
      serviceName: 'db',
      replicas: 2,
      selector: { matchLabels: { app: 'db' } },
      template: {
        metadata: { labels: { app: 'db' } },
        spec: { containers: [{ name: 'pause', image: PAUSE_IMAGE }] },
      },
    },
  };
  await kubectl(['-n', ns, 'apply', '-f', '-'], { input: JSON.stringify(sts) });
  await kubectl(['-n', ns, 'rollout', 'status', 'statefulset/db', '--timeout=90s']);
  const status = JSON.parse((await kubectl(['-n', ns, 'get', 'statefulset', 'db', '-o', 'json'])).stdout) as {
    status: { readyReplicas?: number };
  };
  assert.equal(status.status.readyReplicas, 2);
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

test('a ServiceAccount kubeconfig has exactly the RBAC granted to it', async (t: TestContext) => {
  if (!needs(t, 'controllers')) return;
  const ns = await freshNamespace('rbac');
  await kubectl(['-n', ns, 'create', 'serviceaccount', 'operator']);
  await kubectl(['-n', ns, 'create', 'role', 'cm-reader', '--verb=get,list', '--resource=configmaps']);
  await kubectl([
    '-n',
    ns,
    'create',
    'rolebinding',
    'cm-reader',
    '--role=cm-reader',
    `--serviceaccount=${ns}:operator`,
  ]);
  const kubeconfig = await plane().serviceAccountKubeconfig(ns, 'operator');
  const whoami = await kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], {
    kubeconfig,
  });
  assert.equal(whoami.stdout, `system:serviceaccount:${ns}:operator`);
  // kube-root-ca.crt is published into every namespace by kube-controller-manager.
  await eventually('configmap kube-root-ca.crt readable by the ServiceAccount', async () =>
    (await kubectl(['-n', ns, 'get', 'configmap', 'kube-root-ca.crt'], { kubeconfig, allowFail: true }))
      .code === 0
      ? true
      : undefined,
  );
  const denied = await kubectl(['-n', ns, 'get', 'secrets'], { kubeconfig, allowFail: true });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /forbidden/i);
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

test('kube-apiserver can be stopped and restarted mid-test', async (t: TestContext) => {
  if (!plane().capabilities.restart) {
    t.skip('MAILFLEET_TEST_KUBECONFIG cluster: restarting its kube-apiserver is not possible from here');
    return;
  }
  const ns = await freshNamespace('restart');
  await kubectl(['-n', ns, 'create', 'configmap', 'before', '--from-literal=k=v']);
  await plane().stopApiServer();
  const down = await kubectl(['-n', ns, 'get', 'configmap', 'before', '--request-timeout=3s'], {
    allowFail: true,
  });
  assert.notEqual(down.code, 0, 'kubectl fails while kube-apiserver is down');
  await plane().startApiServer();
  const cm = await kubectl(['-n', ns, 'get', 'configmap', 'before', '-o', 'jsonpath={.data.k}']);
  assert.equal(cm.stdout, 'v', 'data survived the restart (etcd kept running)');
  // Controllers, scheduler and kwok reconnect by themselves.
  if (!plane().capabilities.nodes) return;
  await kubectl(['-n', ns, 'apply', '-f', '-'], { input: deployment('after', 1) });
  await kubectl(['-n', ns, 'wait', '--for=condition=Available', 'deployment/after', '--timeout=90s']);
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

// ---------------------------------------------------------------------------
// mailfleet.dev CRDs

interface Crd {
  metadata: { name: string };
  spec: {
    names: { kind: string; plural: string; shortNames?: string[] };
    versions: {
      name: string;
      additionalPrinterColumns?: { name: string; priority?: number }[];
      subresources?: { scale?: { specReplicasPath: string } };
    }[];
  };
}

function readYamlDocs(file: string): Record<string, unknown>[] {
  return parseAllDocuments(fs.readFileSync(file, 'utf8'))
    .map((doc) => doc.toJS() as Record<string, unknown> | null)
    .filter((doc): doc is Record<string, unknown> => doc !== null);
}

function yamlFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

const crdFiles = yamlFiles(CRD_DIR);
const crds = crdFiles
  .flatMap(readYamlDocs)
  .filter((d) => d.kind === 'CustomResourceDefinition') as unknown as Crd[];
const sampleDocs = yamlFiles(SAMPLES_DIR).flatMap(readYamlDocs);
const NO_CRDS = crds.length === 0 ? `no CustomResourceDefinition in ${CRD_DIR}/*.yaml` : false;

function crdOf(kind: string): Crd {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  assert.ok(crd, `crds/ defines ${kind}`);
  return crd;
}

function sampleOf(
  kind: string,
): Record<string, unknown> & { metadata: { name: string }; spec: Record<string, unknown> } {
  const sample = sampleDocs.find((d) => d.kind === kind);
  assert.ok(sample, `crds/samples/ has a ${kind}`);
  return structuredClone(sample) as Record<string, unknown> & {
    metadata: { name: string };
    spec: Record<string, unknown>;
  };
}

let crdsInstalled: Promise<void> | undefined;
function installCrds(): Promise<void> {
  crdsInstalled ??= (async () => {
    const applied = await kubectl(['apply', '--server-side', '-f', CRD_DIR, '-o', 'name']);
    const crdNames = applied.stdout.trim().split('\n').filter(Boolean);
    assert.equal(crdNames.length, crds.length);
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...crdNames]);
  })();
  return crdsInstalled;
}

/** Applies a manifest in a fresh namespace; returns kubectl's result (never throws). */
async function applyIn(ns: string, object: unknown): Promise<ExecResult> {
  return kubectl(['-n', ns, 'apply', '-f', '-'], { input: JSON.stringify(object), allowFail: true });
}

function withoutNamespace<T extends { metadata: Record<string, unknown> }>(object: T): T {
  delete object.metadata.namespace;
  return object;
}

test('the mailfleet.dev CRDs install and become Established', { skip: NO_CRDS }, async () => {
  await installCrds();
  for (const crd of crds) {
    const established = await kubectl([
      'get',
      'crd',
      crd.metadata.name,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Established")].status}',
    ]);
    assert.equal(established.stdout, 'True', `${crd.metadata.name} Established`);
    assert.ok(crd.metadata.name.endsWith('.mailfleet.dev'));
  }
  const resources = (await kubectl(['api-resources', '--api-group=mailfleet.dev', '-o', 'wide'])).stdout;
  for (const kind of ['RelayPool', 'SendingDomain', 'RateLimit'])
    assert.match(resources, new RegExp(`\\b${kind}\\b`));
  for (const short of ['rp', 'sd', 'rl']) assert.match(resources, new RegExp(`\\b${short}\\b`));
});

test(
  'the samples in crds/samples apply',
  { skip: NO_CRDS || (sampleDocs.length === 0 && 'no crds/samples') },
  async () => {
    await installCrds();
    await kubectl(['apply', '-f', SAMPLES_DIR]);
    for (const doc of sampleDocs) {
      const meta = doc.metadata as { name: string; namespace?: string };
      const args = meta.namespace ? ['-n', meta.namespace] : [];
      await kubectl([...args, 'get', String(doc.kind), meta.name]);
    }
    const listed = (await kubectl(['get', 'rp,sd,rl', '-A', '-o', 'name'])).stdout.trim().split('\n');
    const crSamples = sampleDocs.filter((d) => String(d.apiVersion).startsWith('mailfleet.dev/'));
    assert.ok(
      listed.length >= crSamples.length,
      `rp,sd,rl lists ${crSamples.length} samples: ${listed.join(' ')}`,
    );
  },
);

test('invalid RelayPools are rejected with the CEL messages', { skip: NO_CRDS }, async () => {
  await installCrds();
  const ns = await freshNamespace('cel');

  const smarthost = withoutNamespace(sampleOf('RelayPool'));
  smarthost.metadata.name = 'no-smarthost';
  smarthost.spec.delivery = { mode: 'Smarthost' };
  const rejected = await applyIn(ns, smarthost);
  assert.notEqual(rejected.code, 0, 'Smarthost without smarthost.host is rejected');
  assert.match(rejected.stderr, /spec\.delivery/);
  assert.match(rejected.stderr, /smarthost\.host is required when delivery\.mode is Smarthost/);

  const autoscaling = withoutNamespace(sampleOf('RelayPool'));
  autoscaling.metadata.name = 'bad-autoscaling';
  autoscaling.spec.autoscaling = { minReplicas: 5, maxReplicas: 2 };
  const inverted = await applyIn(ns, autoscaling);
  assert.notEqual(inverted.code, 0, 'minReplicas > maxReplicas is rejected');
  assert.match(inverted.stderr, /spec\.autoscaling/);
  assert.match(inverted.stderr, /minReplicas must not be greater than .*maxReplicas/);

  const valid = withoutNamespace(sampleOf('RelayPool'));
  valid.metadata.name = 'valid';
  const accepted = await applyIn(ns, valid);
  assert.equal(accepted.code, 0, accepted.stderr);
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

test('SendingDomain spec.domain is immutable', { skip: NO_CRDS }, async () => {
  await installCrds();
  const ns = await freshNamespace('immutable');
  const sd = withoutNamespace(sampleOf('SendingDomain'));
  sd.metadata.name = 'immutable';
  const created = await applyIn(ns, sd);
  assert.equal(created.code, 0, created.stderr);
  const changed = await kubectl(
    [
      '-n',
      ns,
      'patch',
      'sendingdomain',
      'immutable',
      '--type=merge',
      '-p',
      '{"spec":{"domain":"other.example.org"}}',
    ],
    { allowFail: true },
  );
  assert.notEqual(changed.code, 0, 'changing spec.domain is rejected');
  assert.match(changed.stderr, /spec\.domain/);
  assert.match(changed.stderr, /immutable/);
  const labelled = await kubectl(['-n', ns, 'label', 'sendingdomain', 'immutable', 'team=mail']);
  assert.equal(labelled.code, 0, 'other updates still work');
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

test('kubectl explain documents the CRD fields', { skip: NO_CRDS }, async () => {
  await installCrds();
  const explained = await eventually('kubectl explain relaypool.spec (OpenAPI published)', async () => {
    const result = await kubectl(['explain', 'relaypool.spec'], { allowFail: true });
    return result.code === 0 ? result.stdout : undefined;
  });
  assert.match(explained, /KIND:\s+RelayPool/);
  assert.match(explained, /GROUP:\s+mailfleet\.dev/);
  assert.match(explained, /FIELDS:/);
  assert.match(explained, /delivery/);
  const field = await kubectl(['explain', 'sd.spec.domain']);
  assert.match(field.stdout, /FIELD:\s+domain/);
  assert.match((await kubectl(['explain', 'ratelimits'])).stdout, /DESCRIPTION:/);
});

test('kubectl get shows the printer columns', { skip: NO_CRDS }, async () => {
  await installCrds();
  const ns = await freshNamespace('columns');
  const objects = [sampleOf('RelayPool'), sampleOf('SendingDomain'), sampleOf('RateLimit')];
  for (const object of objects) {
    const result = await applyIn(ns, withoutNamespace(object));
    assert.equal(result.code, 0, result.stderr);
  }
  for (const kind of ['RelayPool', 'SendingDomain', 'RateLimit']) {
    const crd = crdOf(kind);
    const columns = crd.spec.versions.find((v) => v.name === 'v1alpha1')?.additionalPrinterColumns ?? [];
    assert.ok(columns.length > 0, `${kind} declares printer columns`);
    const short = crd.spec.names.shortNames?.[0] ?? crd.spec.names.plural;
    const header = (await kubectl(['-n', ns, 'get', short, '-o', 'wide'])).stdout.split('\n')[0] ?? '';
    for (const column of columns) {
      assert.ok(header.includes(column.name.toUpperCase()), `${kind} column ${column.name} in "${header}"`);
    }
    const narrow = (await kubectl(['-n', ns, 'get', short])).stdout.split('\n')[0] ?? '';
    for (const column of columns.filter((c) => (c.priority ?? 0) > 0)) {
      assert.ok(
        !narrow.includes(column.name.toUpperCase()),
        `${kind} column ${column.name} only with -o wide`,
      );
    }
  }
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

test('kubectl scale works on RelayPools (scale subresource)', { skip: NO_CRDS }, async () => {
  await installCrds();
  const ns = await freshNamespace('scale');
  const rp = withoutNamespace(sampleOf('RelayPool'));
  rp.metadata.name = 'x';
  const created = await applyIn(ns, rp);
  assert.equal(created.code, 0, created.stderr);
  const specPath = crdOf('RelayPool').spec.versions.find((v) => v.name === 'v1alpha1')?.subresources?.scale;
  assert.ok(specPath, 'RelayPool has a scale subresource');
  await kubectl(['-n', ns, 'scale', 'rp/x', '--replicas=4']);
  const replicas = await kubectl([
    '-n',
    ns,
    'get',
    'rp',
    'x',
    '-o',
    `jsonpath={${specPath.specReplicasPath}}`,
  ]);
  assert.equal(replicas.stdout, '4');
  const scale = JSON.parse(
    (await kubectl(['get', '--raw', `/apis/mailfleet.dev/v1alpha1/namespaces/${ns}/relaypools/x/scale`]))
      .stdout,
  ) as { kind: string; spec: { replicas: number } };
  assert.equal(scale.kind, 'Scale');
  assert.equal(scale.spec.replicas, 4);
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});
