// The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
// on free 127.0.0.1 ports, with certificates and data in one directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../net.ts';
import { resolveBinaries } from './binaries.ts';
import type { Binaries } from './binaries.ts';
import { request } from './http.ts';
import type { HttpResult, TlsIdentity } from './http.ts';
import { b64, writeKubeconfig } from './kubeconfig.ts';
import { runKubectl } from './kubectl.ts';
import { componentSpecs, fakeNode } from './components.ts';
import { makePki } from './pki.ts';
import type { Pki } from './pki.ts';
import { launch, removeOnExit, removedDir, terminate, probeWhileRunning } from './processes.ts';
import type { Managed } from './processes.ts';
import type {
  Capabilities,
  ClusterState,
  Component,
  ControlPlane,
  ExecResult,
  KubectlOptions,
  LocalInfo,
  ServiceAccountKubeconfigOptions,
  StartOptions,
} from './types.ts';

class LocalControlPlane implements ControlPlane {
  readonly kubeconfig: string;
  readonly server: string;
  readonly external = false;
  readonly capabilities: Capabilities;
  readonly binaries: Binaries;
  readonly dir: string;
  readonly ports: Record<string, number>;
  private readonly removeDir: boolean;
  private readonly pki: Pki;
  private readonly admin: TlsIdentity;
  private readonly detached: boolean;
  private readonly timeoutMs: number;
  private readonly log: (message: string) => void;
  private readonly procs = new Map<Component, Managed>();
  private readonly specs = new Map<Component, { bin: string; args: string[] }>();
  private stopped = false;

  constructor(init: {
    dir: string;
    removeDir: boolean;
    kubeconfig: string;
    binaries: Binaries;
    ports: Record<string, number>;
    pki: Pki;
    detached: boolean;
    timeoutMs: number;
    log: (message: string) => void;
  }) {
    this.dir = init.dir;
    this.removeDir = init.removeDir;
    this.kubeconfig = init.kubeconfig;
    this.binaries = init.binaries;
    this.ports = init.ports;
    this.pki = init.pki;
    this.detached = init.detached;
    this.timeoutMs = init.timeoutMs;
    this.log = init.log;
    this.server = `https://127.0.0.1:${init.ports.apiserver}`;
    const admin = init.pki.clients.admin;
    if (!admin) throw new Error('admin client certificate missing');
    this.admin = {
      ca: fs.readFileSync(init.pki.caCert, 'utf8'),
      cert: fs.readFileSync(admin.cert, 'utf8'),
      key: fs.readFileSync(admin.key, 'utf8'),
    };
    const controllers = Boolean(init.binaries['kube-controller-manager']);
    const scheduler = Boolean(init.binaries['kube-scheduler']);
    this.capabilities = {
      controllers,
      scheduler,
      nodes: Boolean(init.binaries.kwok) && scheduler,
      restart: true,
    };
  }

  /** Processes and ports, for .local/cluster.json. */
  state(): ClusterState {
    return {
      dir: this.dir,
      removeDir: this.removeDir,
      kubeconfig: this.kubeconfig,
      server: this.server,
      ports: this.ports,
      processes: [...this.procs.values()]
        .filter((proc) => !proc.exit && proc.child.pid)
        .map((proc) => ({ name: proc.name, pid: proc.child.pid ?? 0, bin: proc.bin })),
      startedAt: new Date().toISOString(),
    };
  }

  private componentKubeconfig(name: string): string {
    const client = this.pki.clients[name];
    if (!client) throw new Error(`no client certificate for ${name}`);
    const file = path.join(this.dir, `${name}.kubeconfig`);
    writeKubeconfig(file, this.server, b64(this.pki.caCert), {
      clientCertificateData: b64(client.cert),
      clientKeyData: b64(client.key),
    });
    return file;
  }

  private start(name: Component): Managed {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`${name} is not configured`);
    const proc = launch(name, spec.bin, spec.args, path.join(this.dir, 'logs'), this.detached);
    this.procs.set(name, proc);
    return proc;
  }

  async boot(options: { nodes: number; useServiceAccountCredentials: boolean }): Promise<void> {
    const b = this.binaries;
    const p = this.ports;
    fs.mkdirSync(path.join(this.dir, 'logs'), { recursive: true });
    for (const [name, spec] of componentSpecs({
      binaries: b,
      ports: p,
      pki: this.pki,
      dir: this.dir,
      useServiceAccountCredentials: options.useServiceAccountCredentials,
      kubeconfigFor: (component) => this.componentKubeconfig(component),
    }))
      this.specs.set(name, spec);

    let t = Date.now();
    const etcd = this.start('etcd');
    await probeWhileRunning(
      'etcd health',
      this.timeoutMs,
      async () => {
        const res = await fetch(`http://127.0.0.1:${p.etcd}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true' ? true : undefined;
      },
      [etcd],
    );
    this.log(`etcd ready in ${Date.now() - t} ms`);
    t = Date.now();
    await this.startApiServer();
    this.log(`kube-apiserver ready in ${Date.now() - t} ms`);
    writeKubeconfig(this.kubeconfig, this.server, b64(this.pki.caCert), {
      clientCertificateData: b64(this.pki.clients.admin?.cert ?? ''),
      clientKeyData: b64(this.pki.clients.admin?.key ?? ''),
    });
    t = Date.now();
    for (const name of ['kube-controller-manager', 'kube-scheduler', 'kwok'] as const) {
      if (this.specs.has(name)) this.start(name);
    }
    if (this.specs.has('kwok')) {
      const zones = ['a', 'b', 'c'];
      for (let i = 0; i < options.nodes; i++) {
        const node = fakeNode(`kwok-node-${i}`, `zone-${zones[i % zones.length] ?? 'a'}`);
        const res = await request(this.server, this.admin, 'POST', '/api/v1/nodes', node);
        if (res.status !== 201 && res.status !== 409) {
          throw new Error(`creating fake node failed: ${res.status} ${res.body}`);
        }
      }
    }
    await this.waitReady();
    const others = [...this.specs.keys()].filter((name) => name !== 'etcd' && name !== 'kube-apiserver');
    this.log(`${others.length > 0 ? others.join(', ') : 'no other component'} ready in ${Date.now() - t} ms`);
  }

  private watched(): Managed[] {
    return [...this.procs.values()].filter((proc) => this.specs.has(proc.name));
  }

  private async get(urlPath: string): Promise<HttpResult> {
    return request(this.server, this.admin, 'GET', urlPath);
  }

  async waitReady(timeoutMs = this.timeoutMs): Promise<void> {
    const watch = this.watched();
    await probeWhileRunning(
      'kube-apiserver /readyz',
      timeoutMs,
      async () => {
        const res = await this.get('/readyz');
        if (res.status === 200) return true;
        throw new Error(`/readyz ${res.status}: ${res.body.slice(0, 400)}`);
      },
      watch,
    );
    await probeWhileRunning(
      'namespace default',
      timeoutMs,
      async () => ((await this.get('/api/v1/namespaces/default')).status === 200 ? true : undefined),
      watch,
    );
    if (this.capabilities.controllers) {
      await probeWhileRunning(
        'serviceaccount default/default',
        timeoutMs,
        async () =>
          (await this.get('/api/v1/namespaces/default/serviceaccounts/default')).status === 200
            ? true
            : undefined,
        watch,
      );
    }
    if (this.capabilities.nodes) {
      await probeWhileRunning(
        'a Ready kwok node',
        timeoutMs,
        async () => {
          const res = await this.get('/api/v1/nodes');
          const list = JSON.parse(res.body) as {
            items?: { status?: { conditions?: { type: string; status: string }[] } }[];
          };
          const ready = (list.items ?? []).filter((node) =>
            (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
          );
          return ready.length > 0 ? true : undefined;
        },
        watch,
      );
    }
  }

  async stopApiServer(): Promise<void> {
    const proc = this.procs.get('kube-apiserver');
    if (proc) await terminate(proc);
  }

  async startApiServer(): Promise<void> {
    const current = this.procs.get('kube-apiserver');
    if (current && !current.exit) throw new Error('kube-apiserver is already running');
    const etcd = this.procs.get('etcd');
    const proc = this.start('kube-apiserver');
    await probeWhileRunning(
      'kube-apiserver /readyz',
      this.timeoutMs,
      async () => {
        const res = await this.get('/readyz');
        if (res.status === 200) return true;
        throw new Error(`/readyz ${res.status}: ${res.body.slice(0, 400)}`);
      },
      etcd ? [etcd, proc] : [proc],
    );
  }

  async kubectl(args: string[], options: KubectlOptions = {}): Promise<ExecResult> {
    return runKubectl(this.binaries.kubectl, options.kubeconfig ?? this.kubeconfig, args, options);
  }

  async serviceAccountKubeconfig(
    namespace: string,
    name: string,
    options: ServiceAccountKubeconfigOptions = {},
  ): Promise<string> {
    const res = await request(
      this.server,
      this.admin,
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: options.expirationSeconds ?? 3600 },
      },
    );
    if (res.status !== 201)
      throw new Error(`TokenRequest for ${namespace}/${name} failed: ${res.status} ${res.body}`);
    const token = (JSON.parse(res.body) as { status: { token: string } }).status.token;
    const file = options.path ?? path.join(this.dir, `sa-${namespace}-${name}.kubeconfig`);
    writeKubeconfig(file, this.server, b64(this.pki.caCert), { token }, `${namespace}-${name}`);
    return file;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const order: Component[][] = [
      ['kwok', 'kube-scheduler', 'kube-controller-manager'],
      ['kube-apiserver'],
      ['etcd'],
    ];
    for (const group of order) {
      await Promise.all(
        group.map(async (name) => {
          const proc = this.procs.get(name);
          if (proc) await terminate(proc);
        }),
      );
    }
    if (this.removeDir) fs.rmSync(this.dir, { recursive: true, force: true });
    removedDir(this.dir);
  }
}

/** Starts the local control plane and resolves once it is ready. */
export async function startLocalControlPlane(
  options: StartOptions,
  log: (message: string) => void,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
): Promise<ControlPlane & LocalInfo> {
  const binaries = resolveBinaries({ build: options.build, log, env });
  const removeDir = !options.dir;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-cp-'));
  fs.mkdirSync(dir, { recursive: true });
  const ports: Record<string, number> = {};
  for (const name of ['etcd', 'etcdPeer', 'apiserver', 'kwok']) ports[name] = await freePort();
  const t = Date.now();
  const pki = makePki(path.join(dir, 'pki'));
  log(`certificates in ${Date.now() - t} ms`);
  if (removeDir && !options.detached) removeOnExit(dir);
  const cp = new LocalControlPlane({
    dir,
    removeDir,
    kubeconfig: options.kubeconfigPath ?? path.join(dir, 'kubeconfig'),
    binaries,
    ports,
    pki,
    detached: options.detached ?? false,
    timeoutMs,
    log,
  });
  try {
    await cp.boot({
      nodes: options.nodes ?? 3,
      useServiceAccountCredentials: options.useServiceAccountCredentials ?? true,
    });
  } catch (error) {
    await cp.stop();
    throw error;
  }
  return cp;
}
