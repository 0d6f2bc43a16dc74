// The chart's optional Valkey for spec.sharedState (sharedState.valkey): what `helm template`
// renders (off by default; a non-root, read-only StatefulSet, a headless Service, a generated or
// existing password Secret, a NetworkPolicy in the hardened profile), and the rendered container
// itself: its command and readiness probe run as written against Debian's redis-server (linked
// as valkey-server/valkey-cli; Valkey is a fork with the same command line), on loopback.
// kubeconform and kube-score check the same manifests in linters.test.ts (every optional feature,
// hardened profile); kube-apiserver accepts them in chart-template.test.ts.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { templateChart } from '../helpers/helm.ts';
import { CHART_DIR } from '../helpers/prometheus/chart-files.ts';
import { freePort, removeDir, stopProcess, tempDir, waitFor } from '../helpers/relay/peers.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered Kubernetes objects
type Manifest = { kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };
type Container = {
  command: string[];
  env: { name: string; value: string }[];
  readinessProbe: { exec: { command: string[] } };
  livenessProbe: { tcpSocket: { port: string } };
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string }[];
};

const ON = 'sharedState.valkey.enabled=true';
const HARDENED = path.join(CHART_DIR, 'values-hardened.yaml');

function render(set: string[] = [], files: string[] = []): Manifest[] {
  return parseAllDocuments(templateChart(set, files))
    .map((d) => d.toJS() as Manifest)
    .filter((m) => m?.kind);
}
const valkeyObjects = (manifests: Manifest[]) =>
  manifests.filter((m) => m.metadata.name === 'fleet-mailfleet-valkey');
const get = (manifests: Manifest[], kind: string) => {
  const found = valkeyObjects(manifests).filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
};
const containerOf = (manifests: Manifest[]): Container =>
  get(manifests, 'StatefulSet').spec.template.spec.containers[0] as Container;

describe('helm template', () => {
  test('off by default: no store', () => {
    assert.deepEqual(valkeyObjects(render()), []);
    assert.deepEqual(valkeyObjects(render([], [HARDENED])), []);
  });

  test('on: one non-root, read-only pod with its data on a claim, a headless Service, a generated password', () => {
    const manifests = render([ON]);
    assert.deepEqual(
      valkeyObjects(manifests)
        .map((m) => m.kind)
        .sort(),
      ['Secret', 'Service', 'StatefulSet'],
    );
    const sts = get(manifests, 'StatefulSet');
    assert.equal(sts.spec.replicas, 1);
    assert.equal(sts.spec.serviceName, 'fleet-mailfleet-valkey');
    const pod = sts.spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    const c = containerOf(manifests);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
    assert.deepEqual(
      c.volumeMounts.map((m) => m.mountPath),
      ['/data', '/etc/valkey/secret', '/tmp'],
    );
    assert.deepEqual(sts.spec.volumeClaimTemplates[0].spec.resources.requests, { storage: '2Gi' });
    // The selector matches the store's pod only, never the operator's (component: operator).
    assert.equal(sts.spec.selector.matchLabels['app.kubernetes.io/component'], 'shared-state');
    const svc = get(manifests, 'Service');
    assert.equal(svc.spec.clusterIP, 'None');
    assert.deepEqual(svc.spec.ports, [{ name: 'valkey', port: 6379, targetPort: 'valkey', protocol: 'TCP' }]);
    assert.deepEqual(svc.spec.selector, sts.spec.selector.matchLabels);
    const password = Buffer.from(get(manifests, 'Secret').data?.password ?? '', 'base64').toString();
    assert.match(password, /^[A-Za-z0-9]{32}$/);
    assert.deepEqual(pod.volumes.find((v: { name: string }) => v.name === 'secret').secret, {
      secretName: 'fleet-mailfleet-valkey',
      items: [{ key: 'password', path: 'password' }],
    });
    // No NetworkPolicy unless the profile asks for them.
    assert.equal(
      valkeyObjects(manifests).some((m) => m.kind === 'NetworkPolicy'),
      false,
    );
  });

  test('existingSecret: no Secret made, the pod reads the given one; persistence off: an emptyDir', () => {
    const manifests = render([
      ON,
      'sharedState.valkey.existingSecret=store,sharedState.valkey.persistence.enabled=false',
    ]);
    assert.deepEqual(
      valkeyObjects(manifests)
        .map((m) => m.kind)
        .sort(),
      ['Service', 'StatefulSet'],
    );
    const sts = get(manifests, 'StatefulSet');
    const volumes = sts.spec.template.spec.volumes as {
      name: string;
      secret?: { secretName: string };
      emptyDir?: unknown;
    }[];
    assert.equal(volumes.find((v) => v.name === 'secret')?.secret?.secretName, 'store');
    assert.deepEqual(volumes.find((v) => v.name === 'data')?.emptyDir, {});
    assert.equal(sts.spec.volumeClaimTemplates, undefined);
  });

  test('the hardened profile: only relay pods of the listed namespaces reach port 6379, and the store reaches nothing', () => {
    const manifests = render([ON, 'sharedState.valkey.clientNamespaces={mail,news}'], [HARDENED]);
    const policy = get(manifests, 'NetworkPolicy').spec;
    assert.deepEqual(policy.podSelector.matchLabels, get(manifests, 'StatefulSet').spec.selector.matchLabels);
    assert.deepEqual(policy.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(policy.egress, []);
    assert.equal(policy.ingress.length, 1);
    const [from] = policy.ingress[0].from;
    assert.deepEqual(from.namespaceSelector.matchExpressions[0].values, ['mailfleet-system', 'mail', 'news']);
    assert.deepEqual(from.podSelector.matchLabels, { 'app.kubernetes.io/name': 'mailfleet-relay' });
    assert.deepEqual(policy.ingress[0].ports, [{ protocol: 'TCP', port: 6379 }]);
  });
});

describe('the rendered container, run', () => {
  const container = containerOf(render([ON]));
  let dir = '';
  let server: ChildProcess | undefined;
  let port = 0;
  const password = 'rendered-store-password-0123';
  let env: NodeJS.ProcessEnv = {};
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    spawnSync('redis-cli', ['-p', String(port), ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...extra },
    });

  before(async () => {
    dir = await tempDir('chart-valkey');
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    await mkdir(path.join(dir, 'data'));
    for (const [name, real] of [
      ['valkey-server', 'redis-server'],
      ['valkey-cli', 'redis-cli'],
    ] as const) {
      const which = spawnSync('sh', ['-c', `command -v ${real}`], { encoding: 'utf8' }).stdout.trim();
      assert.ok(which, `${real} is installed (scripts/setup-system.ts)`);
      await symlink(which, path.join(bin, name));
    }
    await writeFile(path.join(dir, 'password'), password);
    port = await freePort();
    // The container's own environment, with the pod's paths moved under `dir`, loopback only.
    const rendered = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
    assert.equal(rendered.VALKEY_DATA, '/data');
    assert.equal(rendered.VALKEY_PASSWORD_FILE, '/etc/valkey/secret/password');
    env = {
      ...process.env,
      ...rendered,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      VALKEY_PORT: String(port),
      VALKEY_BIND: '127.0.0.1',
      VALKEY_DATA: path.join(dir, 'data'),
      VALKEY_PASSWORD_FILE: path.join(dir, 'password'),
    };
    const [shell, ...args] = container.command;
    server = spawn(shell!, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [server.stdout, server.stderr]) stream?.on('data', (c: Buffer) => (output += c));
    await waitFor(
      () => output.includes('Ready to accept connections') || server?.exitCode !== null,
      10_000,
      'the store to start',
    );
    assert.equal(server.exitCode, null, output);
  });
  after(async () => {
    if (server) await stopProcess(server, 'SIGTERM');
    if (dir) await removeDir(dir);
  });

  test('it asks for the password from the Secret file, which is not on its command line', async () => {
    assert.match(cli(['ping']).stdout, /NOAUTH/);
    assert.equal(cli(['ping'], { REDISCLI_AUTH: password }).stdout.trim(), 'PONG');
    const cmdline = await readFile(`/proc/${server?.pid}/cmdline`, 'utf8');
    assert.ok(!cmdline.includes(password), cmdline);
  });

  test('it never evicts (a lost suppression entry is a recipient mailed again) and keeps an append-only file', () => {
    const config = (key: string) =>
      cli(['config', 'get', key], { REDISCLI_AUTH: password }).stdout.split('\n')[1];
    assert.equal(config('maxmemory-policy'), 'noeviction');
    assert.equal(config('maxmemory'), String(400 * 1024 * 1024));
    assert.equal(config('appendonly'), 'yes');
    assert.equal(config('dir'), path.join(dir, 'data'));
  });

  test('the readiness probe passes with the mounted password and fails with another', async () => {
    const probe = (extra: NodeJS.ProcessEnv) => {
      const [shell, ...args] = container.readinessProbe.exec.command;
      return spawnSync(shell!, args, { env: { ...env, ...extra }, encoding: 'utf8' }).status;
    };
    assert.equal(probe({}), 0);
    await writeFile(path.join(dir, 'wrong'), 'not-the-password');
    assert.notEqual(probe({ VALKEY_PASSWORD_FILE: path.join(dir, 'wrong') }), 0);
    assert.equal(container.livenessProbe.tcpSocket.port, 'valkey');
  });
});
