// Finding the control-plane binaries: KUBEBUILDER_ASSETS first, then the build cache of build.sh
// (built when Go is present).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_SCRIPT, CONTROLPLANE_DIR, REPO_ROOT } from './paths.ts';

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

/** The build cache bin dir of build.sh for the current go.sum files. */
export function cacheBinDir(): string {
  const hash = crypto.createHash('sha256');
  for (const module of MODULES) hash.update(fs.readFileSync(path.join(CONTROLPLANE_DIR, module, 'go.sum')));
  return path.join(REPO_ROOT, '.cache', 'controlplane', hash.digest('hex').slice(0, 12), 'bin');
}

export function isExecutable(file: string): boolean {
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
  'Either install Go >= 1.26 (https://go.dev/dl/, `go` on PATH) and run dev/controlplane/build.sh ' +
  '(builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm into ' +
  '.cache/controlplane/), or set KUBEBUILDER_ASSETS to a dir with envtest binaries (etcd, kube-apiserver; ' +
  'e.g. `setup-envtest use -p path`), or set MAILFLEET_TEST_KUBECONFIG to the kubeconfig of an existing ' +
  'cluster to run against it.';

/**
 * Finds the binaries: KUBEBUILDER_ASSETS first (etcd, kube-apiserver required there), then the build
 * cache, building it when allowed. Throws an error explaining what to install when impossible.
 */
export function resolveBinaries(
  options: { build?: boolean; log?: (message: string) => void; env?: NodeJS.ProcessEnv } = {},
): Binaries {
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
