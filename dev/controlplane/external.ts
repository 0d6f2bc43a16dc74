// An existing cluster (MAILFLEET_TEST_KUBECONFIG): nothing is started; kubectl (from the build cache
// or PATH) talks to it and ServiceAccount tokens come from `kubectl create token`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cacheBinDir, isExecutable } from './binaries.ts';
import type { Binaries } from './binaries.ts';
import { b64, writeKubeconfig } from './kubeconfig.ts';
import { runKubectl } from './kubectl.ts';
import { probeWhileRunning } from './processes.ts';
import type {
  Capabilities,
  ControlPlane,
  ExecResult,
  KubectlOptions,
  ServiceAccountKubeconfigOptions,
} from './types.ts';

function kubectlPath(binaries: Binaries): string {
  return binaries.kubectl ?? 'kubectl';
}

class ExternalControlPlane implements ControlPlane {
  readonly kubeconfig: string;
  readonly server: string;
  readonly external = true;
  readonly capabilities: Capabilities = { controllers: true, scheduler: true, nodes: true, restart: false };
  readonly binaries: Binaries;
  private readonly timeoutMs: number;

  constructor(kubeconfig: string, server: string, binaries: Binaries, timeoutMs: number) {
    this.kubeconfig = kubeconfig;
    this.server = server;
    this.binaries = binaries;
    this.timeoutMs = timeoutMs;
  }

  kubectl(args: string[], options: KubectlOptions = {}): Promise<ExecResult> {
    return runKubectl(kubectlPath(this.binaries), options.kubeconfig ?? this.kubeconfig, args, options);
  }

  async waitReady(timeoutMs = this.timeoutMs): Promise<void> {
    await probeWhileRunning('/readyz of MAILFLEET_TEST_KUBECONFIG cluster', timeoutMs, async () =>
      (await this.kubectl(['get', '--raw', '/readyz'], { allowFail: true })).code === 0 ? true : undefined,
    );
    await probeWhileRunning('serviceaccount default/default', timeoutMs, async () =>
      (await this.kubectl(['-n', 'default', 'get', 'serviceaccount', 'default'], { allowFail: true }))
        .code === 0
        ? true
        : undefined,
    );
  }

  async serviceAccountKubeconfig(
    namespace: string,
    name: string,
    options: ServiceAccountKubeconfigOptions = {},
  ): Promise<string> {
    const token = (
      await this.kubectl([
        '-n',
        namespace,
        'create',
        'token',
        name,
        `--duration=${options.expirationSeconds ?? 3600}s`,
      ])
    ).stdout.trim();
    const view = JSON.parse(
      (await this.kubectl(['config', 'view', '--minify', '--raw', '-o', 'json'])).stdout,
    ) as {
      clusters: {
        cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string };
      }[];
    };
    const cluster = view.clusters[0]?.cluster;
    if (!cluster) throw new Error('no cluster in MAILFLEET_TEST_KUBECONFIG');
    const caData =
      cluster['certificate-authority-data'] ??
      (cluster['certificate-authority'] ? b64(cluster['certificate-authority']) : '');
    const file =
      options.path ??
      path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-sa-')), `${namespace}-${name}.kubeconfig`);
    writeKubeconfig(file, cluster.server, caData, { token }, `${namespace}-${name}`);
    return file;
  }

  stopApiServer(): Promise<void> {
    return Promise.reject(new Error('cannot stop kube-apiserver of a MAILFLEET_TEST_KUBECONFIG cluster'));
  }

  startApiServer(): Promise<void> {
    return Promise.reject(new Error('cannot start kube-apiserver of a MAILFLEET_TEST_KUBECONFIG cluster'));
  }

  async stop(): Promise<void> {}
}

/** Attaches to the cluster of MAILFLEET_TEST_KUBECONFIG and resolves once it is ready. */
export async function attachExternalCluster(
  externalKubeconfig: string,
  timeoutMs: number,
  log: (message: string) => void,
): Promise<ControlPlane> {
  const kubeconfig = path.resolve(externalKubeconfig);
  if (!fs.existsSync(kubeconfig)) throw new Error(`MAILFLEET_TEST_KUBECONFIG=${kubeconfig} does not exist`);
  let binaries: Binaries = {};
  const cached = cacheBinDir();
  for (const name of ['kubectl', 'helm'] as const) {
    if (isExecutable(path.join(cached, name))) binaries[name] = path.join(cached, name);
  }
  if (!binaries.kubectl && spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status !== 0) {
    binaries = {};
    throw new Error(
      'MAILFLEET_TEST_KUBECONFIG is set but no kubectl was found: put kubectl on PATH or run build.sh',
    );
  }
  const server = (
    await runKubectl(binaries.kubectl, kubeconfig, [
      'config',
      'view',
      '--minify',
      '-o',
      'jsonpath={.clusters[0].cluster.server}',
    ])
  ).stdout.trim();
  const cp = new ExternalControlPlane(kubeconfig, server, binaries, timeoutMs);
  await cp.waitReady();
  log(`using existing cluster ${server} (MAILFLEET_TEST_KUBECONFIG)`);
  return cp;
}
