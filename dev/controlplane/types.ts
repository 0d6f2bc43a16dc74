// The control plane as tests and `npm start` see it, whether started here (local.ts) or an existing
// cluster (external.ts), and the state cli.ts keeps between `up` and `down`.
import type { Binaries } from './binaries.ts';

/** The processes of a local control plane, in start order. */
export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';

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

/** Extra info of a locally started control plane. */
export interface LocalInfo {
  dir: string;
  ports: Record<string, number>;
  state(): ClusterState;
}
