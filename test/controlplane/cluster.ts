// A real Kubernetes control plane for tests and local use: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake nodes whose pods become
// Ready without a kubelet), all on free 127.0.0.1 ports with data in a temp dir.
//
// Binaries come from, in order:
//   1. MAILFLEET_TEST_KUBECONFIG=<kubeconfig>: use that cluster, start nothing;
//   2. KUBEBUILDER_ASSETS=<dir>: etcd, kube-apiserver (and kubectl, if there) from the
//      envtest assets dir; the other components from the same dir or the build cache;
//   3. the build cache of test/controlplane/build.sh (run automatically when Go is present).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

/**
 * MAILFLEET_CP_SCALE_TEST=1: the controller manager and the scheduler talk to the API server without
 * their client-side rate limit (20 and 50 requests/s by default), as `kwokctl --disable-qps-limits`
 * runs them for scale tests. The operator benchmark sets it (docs/benchmarks-operator.md).
 */
const scaleTest = () => process.env.MAILFLEET_CP_SCALE_TEST === '1';
const unlimitedQps = () => (scaleTest() ? ['--kube-api-qps=5000', '--kube-api-burst=10000'] : []);
/**
 * Also with MAILFLEET_CP_SCALE_TEST=1: the ReplicaSet controller of Kubernetes 1.36 (Beta, on by
 * default) refuses to sync a ReplicaSet until its pod cache has caught up with its own last write,
 * and requeues it through a queue limited to 10 retries/s; when 1000 Deployments roll out at once
 * most of the wait is there, not in anything the operator does.
 */
const kcmScaleTest = () =>
  scaleTest() ? ['--feature-gates=StaleControllerConsistencyReplicaSet=false'] : [];

export const CONTROLPLANE_DIR = import.meta.dirname;
export const REPO_ROOT = path.resolve(CONTROLPLANE_DIR, '../..');
export const BUILD_SCRIPT = path.join(CONTROLPLANE_DIR, 'build.sh');
const KWOK_STAGES = path.join(CONTROLPLANE_DIR, 'kwok-stages.yaml');
/** Keep in sync with `modules` in build.sh: the cache key hashes their go.sum files in this order. */
const MODULES = ['etcd', 'helm', 'kube', 'kwok'] as const;

export const BINARY_NAMES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
  'helm',
] as const;
export type BinaryName = (typeof BINARY_NAMES)[number];
export type Binaries = Partial<Record<BinaryName, string>>;

/** The annotation kwok is told to manage nodes by. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';

export interface StartOptions {
  /** Data/cert/log dir; default a fresh temp dir, removed by stop(). */
  dir?: string;
  /** Where to write the admin kubeconfig; default `<dir>/kubeconfig`. */
  kubeconfigPath?: string;
  /** Number of fake kwok nodes (default 3, zones a/b/c). */
  nodes?: number;
  /** Leave the processes running when this Node.js process exits (cli.ts up). */
  detached?: boolean;
  /** Run build.sh when cached binaries are missing and Go is installed (default true). */
  build?: boolean;
  /** kube-controller-manager --use-service-account-credentials (default true). */
  useServiceAccountCredentials?: boolean;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
  /** Environment to read KUBEBUILDER_ASSETS / MAILFLEET_TEST_KUBECONFIG from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for readiness (default 120 s). */
  timeoutMs?: number;
}

export interface Capabilities {
  /** kube-controller-manager runs (Deployments, GC, namespaces, SA tokens...). */
  controllers: boolean;
  /** kube-scheduler runs. */
  scheduler: boolean;
  /** Nodes exist whose pods become Ready (kwok or a real cluster). */
  nodes: boolean;
  /** stopApiServer()/startApiServer() are possible. */
  restart: boolean;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  input?: string;
  /** Don't throw on a non-zero exit (default false). */
  allowFail?: boolean;
  /** Kubeconfig to use instead of the admin one. */
  kubeconfig?: string;
  timeoutMs?: number;
}

export interface ServiceAccountKubeconfigOptions {
  /** Token lifetime (default 3600 s). */
  expirationSeconds?: number;
  /** File to write (default `<dir>/sa-<namespace>-<name>.kubeconfig`). */
  path?: string;
}

export interface ControlPlane {
  /** Admin kubeconfig path. */
  readonly kubeconfig: string;
  /** https URL of kube-apiserver. */
  readonly server: string;
  /** True when pointed at MAILFLEET_TEST_KUBECONFIG (nothing started). */
  readonly external: boolean;
  readonly capabilities: Capabilities;
  readonly binaries: Binaries;
  /** Run kubectl with KUBECONFIG set; throws on failure unless allowFail. */
  kubectl(args: string[], options?: KubectlOptions): Promise<ExecResult>;
  /** Wait for /readyz, the default namespace and (with controllers) its default ServiceAccount. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Kubeconfig authenticating as a ServiceAccount (token from the TokenRequest API). */
  serviceAccountKubeconfig(
    namespace: string,
    name: string,
    options?: ServiceAccountKubeconfigOptions,
  ): Promise<string>;
  stopApiServer(): Promise<void>;
  /** Start kube-apiserver again on the same port and data; resolves when ready. */
  startApiServer(): Promise<void>;
  /** Stop everything started and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** What cli.ts saves in .local/cluster.json. */
export interface ClusterState {
  dir: string;
  removeDir: boolean;
  kubeconfig: string;
  server: string;
  ports: Record<string, number>;
  processes: { name: string; pid: number; bin: string }[];
  startedAt: string;
}

// ---------------------------------------------------------------------------
// Binaries

/** The build cache bin dir of build.sh for the current go.sum files. */
export function cacheBinDir(): string {
  const hash = crypto.createHash('sha256');
  for (const module of MODULES) hash.update(fs.readFileSync(path.join(CONTROLPLANE_DIR, module, 'go.sum')));
  return path.join(REPO_ROOT, '.cache', 'controlplane', hash.digest('hex').slice(0, 12), 'bin');
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function haveGo(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

const HOW_TO_GET_BINARIES =
  'Either install Go >= 1.26 (https://go.dev/dl/, `go` on PATH) and run test/controlplane/build.sh ' +
  '(builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm into ' +
  '.cache/controlplane/), or set KUBEBUILDER_ASSETS to a dir with envtest binaries (etcd, kube-apiserver; ' +
  'e.g. `setup-envtest use -p path`), or set MAILFLEET_TEST_KUBECONFIG to the kubeconfig of an existing ' +
  'cluster to run against it.';

/**
 * Finds the binaries: KUBEBUILDER_ASSETS first (etcd, kube-apiserver required there), then the build
 * cache, building it when allowed. Throws an error explaining what to install when impossible.
 */
export function resolveBinaries(options: Pick<StartOptions, 'build' | 'log' | 'env'> = {}): Binaries {
  const env = options.env ?? process.env;
  const cache = cacheBinDir();
  const assets = env.KUBEBUILDER_ASSETS;
  const found: Binaries = {};
  if (assets) {
    for (const name of BINARY_NAMES) {
      const candidate = path.join(assets, name);
      if (isExecutable(candidate)) found[name] = candidate;
      else if (isExecutable(path.join(cache, name))) found[name] = path.join(cache, name);
    }
    const missing = (['etcd', 'kube-apiserver'] as const).filter((name) => !found[name]);
    if (missing.length > 0) {
      throw new Error(`KUBEBUILDER_ASSETS=${assets} lacks ${missing.join(', ')}. ${HOW_TO_GET_BINARIES}`);
    }
    return found;
  }
  const missing = BINARY_NAMES.filter((name) => !isExecutable(path.join(cache, name)));
  if (missing.length > 0) {
    if (options.build === false) {
      throw new Error(
        `Control-plane binaries missing from ${cache}: ${missing.join(', ')}. ${HOW_TO_GET_BINARIES}`,
      );
    }
    if (!haveGo()) {
      throw new Error(
        `Control-plane binaries missing (${missing.join(', ')}) and Go is not installed. ${HOW_TO_GET_BINARIES}`,
      );
    }
    options.log?.(`building control-plane binaries with ${BUILD_SCRIPT} (cold build takes ~40 min)`);
    const result = spawnSync('bash', [BUILD_SCRIPT], { stdio: ['ignore', 2, 2] });
    if (result.status !== 0)
      throw new Error(`${BUILD_SCRIPT} failed (exit ${result.status ?? result.signal})`);
  }
  for (const name of BINARY_NAMES) found[name] = path.join(cache, name);
  return found;
}

// ---------------------------------------------------------------------------
// Small helpers

export { freePort } from '../helpers/net.ts';
import { freePort } from '../helpers/net.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function tail(file: string, lines = 25): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Runs a command; resolves with its output whatever the exit code. */
export function exec(
  bin: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

interface TlsIdentity {
  ca: string;
  cert?: string;
  key?: string;
  token?: string;
}

interface HttpResult {
  status: number;
  body: string;
}

function request(
  server: string,
  identity: TlsIdentity,
  method: string,
  urlPath: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<HttpResult> {
  const url = new URL(urlPath, server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        ca: identity.ca,
        cert: identity.cert,
        key: identity.key,
        timeout: timeoutMs,
        agent: false,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...(identity.token ? { authorization: `Bearer ${identity.token}` } : {}),
        },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------
// Certificates (openssl CLI)

interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  saKey: string;
  saPub: string;
  /** client identities: name -> {cert, key} paths */
  clients: Record<string, { cert: string; key: string }>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function issue(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, extensions.join('\n') + '\n');
  openssl(['req', '-new', ...EC_KEY, '-keyout', key, '-out', csr, '-subj', subject], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      `0x${crypto.randomBytes(12).toString('hex')}`,
      '-days',
      '3650',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    dir,
  );
  fs.rmSync(csr);
  fs.rmSync(ext);
  return { cert, key };
}

function makePki(dir: string): Pki {
  fs.mkdirSync(dir, { recursive: true });
  const caCert = path.join(dir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  openssl(
    [
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      caKey,
      '-out',
      caCert,
      '-days',
      '3650',
      '-sha256',
      '-subj',
      '/CN=mailfleet-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
  const clientExt = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
  ];
  const server = issue(dir, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,' +
      'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1',
  ]);
  const clients = {
    admin: issue(dir, 'admin', '/O=system:masters/CN=mailfleet-admin', clientExt),
    'kube-controller-manager': issue(
      dir,
      'kube-controller-manager',
      '/O=system:masters/CN=system:kube-controller-manager',
      clientExt,
    ),
    'kube-scheduler': issue(dir, 'kube-scheduler', '/CN=system:kube-scheduler', clientExt),
    kwok: issue(dir, 'kwok', '/O=system:masters/CN=kwok', clientExt),
  };
  const saKey = path.join(dir, 'sa.key');
  const saPub = path.join(dir, 'sa.pub');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', saKey], dir);
  openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub], dir);
  return { dir, caCert, caKey, serverCert: server.cert, serverKey: server.key, saKey, saPub, clients };
}

// ---------------------------------------------------------------------------
// Kubeconfig files (JSON is valid kubeconfig YAML)

function b64(file: string): string {
  return fs.readFileSync(file).toString('base64');
}

export function writeKubeconfig(
  file: string,
  server: string,
  caData: string,
  user: { clientCertificateData?: string; clientKeyData?: string; token?: string },
  name = 'mailfleet-test',
): void {
  const userEntry: Record<string, string> = {};
  if (user.clientCertificateData) userEntry['client-certificate-data'] = user.clientCertificateData;
  if (user.clientKeyData) userEntry['client-key-data'] = user.clientKeyData;
  if (user.token) userEntry.token = user.token;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'certificate-authority-data': caData } }],
    users: [{ name, user: userEntry }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------
// Processes

interface Managed {
  name: Component;
  bin: string;
  args: string[];
  log: string;
  child: ChildProcess;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void>;
}

/** pids to SIGKILL and temp dirs to remove if this process exits without stop() (non-detached mode). */
const liveChildren = new Set<number>();
const liveTempDirs = new Set<string>();
let exitHookInstalled = false;
function cleanupOnExit(): void {
  for (const pid of liveChildren) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of liveTempDirs) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  liveTempDirs.clear();
}
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', cleanupOnExit);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupOnExit();
      process.kill(process.pid, signal);
    });
  }
}

function launch(name: Component, bin: string, args: string[], logDir: string, detached: boolean): Managed {
  const log = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(log, 'a');
  const child = spawn(bin, args, {
    stdio: ['ignore', fd, fd],
    detached,
    env: { ...process.env, KUBECONFIG: '' },
  });
  fs.closeSync(fd);
  const managed: Managed = { name, bin, args, log, child, exit: undefined, exited: Promise.resolve() };
  managed.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      managed.exit = { code, signal };
      if (child.pid) liveChildren.delete(child.pid);
      resolve();
    });
    child.once('error', (error) => {
      fs.appendFileSync(log, `spawn error: ${error.message}\n`);
      managed.exit = { code: -1, signal: null };
      resolve();
    });
  });
  if (detached) child.unref();
  else if (child.pid) {
    installExitHook();
    liveChildren.add(child.pid);
  }
  return managed;
}

async function terminate(proc: Managed, graceMs = 10_000): Promise<void> {
  if (proc.exit) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True if pid is running `bin` (guards against pid reuse). */
function pidRuns(pid: number, bin: string): boolean {
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    return argv0 === bin;
  } catch {
    return pidAlive(pid);
  }
}

/** Stops a process this Node.js process did not start (cli.ts down). */
export async function killPid(pid: number, bin: string, graceMs = 10_000): Promise<boolean> {
  if (!pidRuns(pid, bin)) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && pidRuns(pid, bin)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      await sleep(100);
      break;
    }
    await sleep(50);
  }
  return true;
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  watch: Managed[] = [],
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    for (const proc of watch) {
      if (proc.exit) {
        throw new Error(
          `${proc.name} exited (code ${proc.exit.code}, signal ${proc.exit.signal}) while waiting for ${what}; ` +
            `log ${proc.log}:\n${tail(proc.log)}`,
        );
      }
    }
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ''}`,
      );
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------
// The local control plane

function fakeNode(name: string, zone: string): unknown {
  const resources = { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '1Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/role': 'agent',
        'node-role.kubernetes.io/agent': '',
        'topology.kubernetes.io/zone': zone,
        type: 'kwok',
      },
    },
    spec: {},
    status: {
      allocatable: resources,
      capacity: resources,
      nodeInfo: {
        architecture: 'amd64',
        kubeProxyVersion: 'fake',
        kubeletVersion: 'fake',
        operatingSystem: 'linux',
      },
      phase: 'Running',
    },
  };
}

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
    const etcdBin = b.etcd;
    const apiserverBin = b['kube-apiserver'];
    if (!etcdBin || !apiserverBin) throw new Error('etcd and kube-apiserver binaries are required');
    this.specs.set('etcd', {
      bin: etcdBin,
      args: [
        '--name=default',
        `--data-dir=${path.join(this.dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${p.etcd}`,
        `--advertise-client-urls=http://127.0.0.1:${p.etcd}`,
        `--listen-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${p.etcdPeer}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
    });
    // Flags as controller-runtime's envtest sets them, plus default admission and Node authz.
    this.specs.set('kube-apiserver', {
      bin: apiserverBin,
      args: [
        `--etcd-servers=http://127.0.0.1:${p.etcd}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${p.apiserver}`,
        `--cert-dir=${this.pki.dir}`,
        `--tls-cert-file=${this.pki.serverCert}`,
        `--tls-private-key-file=${this.pki.serverKey}`,
        `--client-ca-file=${this.pki.caCert}`,
        '--authorization-mode=Node,RBAC',
        '--enable-admission-plugins=NodeRestriction',
        '--allow-privileged=true',
        '--service-cluster-ip-range=10.96.0.0/16',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${this.pki.saPub}`,
        `--service-account-signing-key-file=${this.pki.saKey}`,
        '--endpoint-reconciler-type=none',
        // MAILFLEET_CP_PROFILING=1: /debug/pprof on the API server (benchmarks look at its CPU).
        `--profiling=${process.env.MAILFLEET_CP_PROFILING === '1'}`,
        '--shutdown-watch-termination-grace-period=2s',
        '--v=1',
      ],
    });
    if (b['kube-controller-manager']) {
      this.specs.set('kube-controller-manager', {
        bin: b['kube-controller-manager'],
        args: [
          `--kubeconfig=${this.componentKubeconfig('kube-controller-manager')}`,
          '--leader-elect=false',
          '--secure-port=0',
          '--controllers=*',
          `--use-service-account-credentials=${options.useServiceAccountCredentials}`,
          `--service-account-private-key-file=${this.pki.saKey}`,
          `--root-ca-file=${this.pki.caCert}`,
          `--cluster-signing-cert-file=${this.pki.caCert}`,
          `--cluster-signing-key-file=${this.pki.caKey}`,
          '--cluster-name=mailfleet-test',
          '--concurrent-deployment-syncs=10',
          '--concurrent-replicaset-syncs=10',
          '--concurrent-gc-syncs=20',
          ...unlimitedQps(),
          ...kcmScaleTest(),
          '--v=1',
        ],
      });
    }
    if (b['kube-scheduler']) {
      this.specs.set('kube-scheduler', {
        bin: b['kube-scheduler'],
        args: [
          `--kubeconfig=${this.componentKubeconfig('kube-scheduler')}`,
          '--leader-elect=false',
          '--secure-port=0',
          ...unlimitedQps(),
          '--v=1',
        ],
      });
    }
    if (b.kwok && b['kube-scheduler']) {
      this.specs.set('kwok', {
        bin: b.kwok,
        args: [
          `--kubeconfig=${this.componentKubeconfig('kwok')}`,
          `--config=${KWOK_STAGES}`,
          '--manage-all-nodes=false',
          `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
          '--cidr=10.244.0.1/16',
          '--node-ip=127.0.0.1',
          `--server-address=127.0.0.1:${p.kwok}`,
          '--node-lease-duration-seconds=40',
        ],
      });
    }

    let t = Date.now();
    const etcd = this.start('etcd');
    await waitFor(
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
    await waitFor(
      'kube-apiserver /readyz',
      timeoutMs,
      async () => {
        const res = await this.get('/readyz');
        if (res.status === 200) return true;
        throw new Error(`/readyz ${res.status}: ${res.body.slice(0, 400)}`);
      },
      watch,
    );
    await waitFor(
      'namespace default',
      timeoutMs,
      async () => ((await this.get('/api/v1/namespaces/default')).status === 200 ? true : undefined),
      watch,
    );
    if (this.capabilities.controllers) {
      await waitFor(
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
      await waitFor(
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
    await waitFor(
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
    liveTempDirs.delete(this.dir);
  }
}

// ---------------------------------------------------------------------------
// External cluster (MAILFLEET_TEST_KUBECONFIG)

function kubectlPath(binaries: Binaries): string {
  return binaries.kubectl ?? 'kubectl';
}

async function runKubectl(
  bin: string | undefined,
  kubeconfig: string,
  args: string[],
  options: KubectlOptions = {},
): Promise<ExecResult> {
  const result = await exec(bin ?? 'kubectl', args, {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    input: options.input,
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  if (result.code !== 0 && !options.allowFail) {
    throw new Error(
      `kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result;
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
    await waitFor('/readyz of MAILFLEET_TEST_KUBECONFIG cluster', timeoutMs, async () =>
      (await this.kubectl(['get', '--raw', '/readyz'], { allowFail: true })).code === 0 ? true : undefined,
    );
    await waitFor('serviceaccount default/default', timeoutMs, async () =>
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

// ---------------------------------------------------------------------------

/**
 * Starts a control plane (or attaches to MAILFLEET_TEST_KUBECONFIG) and resolves once it is ready:
 * /readyz, default namespace and ServiceAccount, a Ready kwok node.
 */
export async function startControlPlane(
  options: StartOptions = {},
): Promise<ControlPlane & Partial<LocalInfo>> {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => {});
  const timeoutMs = options.timeoutMs ?? 120_000;
  const externalKubeconfig = env.MAILFLEET_TEST_KUBECONFIG;
  if (externalKubeconfig) {
    const kubeconfig = path.resolve(externalKubeconfig);
    if (!fs.existsSync(kubeconfig)) throw new Error(`MAILFLEET_TEST_KUBECONFIG=${kubeconfig} does not exist`);
    let binaries: Binaries = {};
    const cached = cacheBinDir();
    for (const name of ['kubectl', 'helm'] as const) {
      if (isExecutable(path.join(cached, name))) binaries[name] = path.join(cached, name);
    }
    if (
      !binaries.kubectl &&
      spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status !== 0
    ) {
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

  const binaries = resolveBinaries({ build: options.build, log, env });
  const removeDir = !options.dir;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-cp-'));
  fs.mkdirSync(dir, { recursive: true });
  const ports: Record<string, number> = {};
  for (const name of ['etcd', 'etcdPeer', 'apiserver', 'kwok']) ports[name] = await freePort();
  const t = Date.now();
  const pki = makePki(path.join(dir, 'pki'));
  log(`certificates in ${Date.now() - t} ms`);
  if (removeDir && !options.detached) {
    installExitHook();
    liveTempDirs.add(dir);
  }
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

/** Extra info of a locally started control plane. */
export interface LocalInfo {
  dir: string;
  ports: Record<string, number>;
  state(): ClusterState;
}

/** Stops the processes recorded in a ClusterState (from another process). */
export async function stopFromState(state: ClusterState): Promise<string[]> {
  const stopped: string[] = [];
  const order = ['kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'];
  const procs = [...state.processes].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  for (const proc of procs) {
    if (await killPid(proc.pid, proc.bin)) stopped.push(`${proc.name} (pid ${proc.pid})`);
  }
  if (state.removeDir) fs.rmSync(state.dir, { recursive: true, force: true });
  return stopped;
}

export function processAlive(proc: { pid: number; bin: string }): boolean {
  return pidAlive(proc.pid) && pidRuns(proc.pid, proc.bin);
}
