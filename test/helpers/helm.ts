// The helm binary of the control-plane build cache, run with its own cache/config/data homes so a
// developer's Helm repositories and plugins never change what the tests see.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { cacheBinDir, resolveBinaries } from '../../dev/controlplane/cluster.ts';

export function helmBin(): string {
  const cached = path.join(cacheBinDir(), 'helm');
  if (existsSync(cached)) return cached;
  const helm = resolveBinaries({ build: false }).helm;
  if (!helm) throw new Error('helm is not built: run dev/controlplane/build.sh');
  return helm;
}

export type HelmResult = { code: number | null; stdout: string; stderr: string };

export function helm(args: string[], env: NodeJS.ProcessEnv = {}): HelmResult {
  const result = spawnSync(helmBin(), args, {
    encoding: 'utf8',
    env: {
      ...process.env,
      HELM_CACHE_HOME: '/tmp/mailfleet-helm/cache',
      HELM_CONFIG_HOME: '/tmp/mailfleet-helm/config',
      HELM_DATA_HOME: '/tmp/mailfleet-helm/data',
      ...env,
    },
    timeout: 300_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
