// A real Kubernetes control plane for tests and local use: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake nodes whose pods become
// Ready without a kubelet), all on free 127.0.0.1 ports with data in a temp dir.
//
// Binaries come from, in order:
//   1. MAILFLEET_TEST_KUBECONFIG=<kubeconfig>: use that cluster, start nothing (external.ts);
//   2. KUBEBUILDER_ASSETS=<dir>: etcd, kube-apiserver (and kubectl, if there) from the
//      envtest assets dir; the other components from the same dir or the build cache;
//   3. the build cache of dev/controlplane/build.sh (run automatically when Go is present).
//
// This module is what tests, `npm start` and cli.ts import; the parts live beside it: binaries.ts,
// http.ts, pki.ts, kubeconfig.ts, processes.ts, kubectl.ts, local.ts, external.ts.
import { attachExternalCluster } from './external.ts';
import { startLocalControlPlane } from './local.ts';
import type { ControlPlane, LocalInfo, StartOptions } from './types.ts';

export { REPO_ROOT } from './paths.ts';
export { BINARY_NAMES, cacheBinDir, resolveBinaries } from './binaries.ts';
export { exec, processAlive, stopFromState } from './processes.ts';
export type { ClusterState, ControlPlane, ExecResult, KubectlOptions } from './types.ts';

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
  if (externalKubeconfig) return attachExternalCluster(externalKubeconfig, timeoutMs, log);
  return startLocalControlPlane(options, log, timeoutMs, env);
}
