// The helm binary of the control-plane build cache, run with its own cache/config/data homes so a
// developer's Helm repositories and plugins never change what the tests see.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { cacheBinDir, resolveBinaries } from '../../dev/controlplane/cluster.ts';
import { CHART_DIR } from './prometheus/chart-files.ts';

export function helmBin(): string {
  const cached = path.join(cacheBinDir(), 'helm');
  if (existsSync(cached)) return cached;
  const helm = resolveBinaries({ build: false }).helm;
  if (!helm) throw new Error('helm is not built: run dev/controlplane/build.sh');
  return helm;
}

export type HelmResult = { code: number | null; stdout: string; stderr: string };

/** Helm's homes for the tests: empty, so no repository or plugin of a developer's applies. */
const helmEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...process.env,
  HELM_CACHE_HOME: '/tmp/mailfleet-helm/cache',
  HELM_CONFIG_HOME: '/tmp/mailfleet-helm/config',
  HELM_DATA_HOME: '/tmp/mailfleet-helm/data',
  ...env,
});

export function helm(args: string[], env: NodeJS.ProcessEnv = {}): HelmResult {
  const result = spawnSync(helmBin(), args, { encoding: 'utf8', env: helmEnv(env), timeout: 300_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * helm without blocking this process: for `--wait` on pods that this process runs itself (the
 * test kubelet), which a synchronous call would starve.
 */
export function helmAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HelmResult> {
  return new Promise((resolve) => {
    const child = spawn(helmBin(), args, { env: helmEnv(env), timeout: 600_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * `helm template fleet <chart> --namespace mailfleet-system` with value files and `--set` values,
 * as the chart tests render it; fails the test when helm does.
 */
export function templateChart(set: string[] = [], valueFiles: string[] = []): string {
  const result = helm([
    'template',
    'fleet',
    CHART_DIR,
    '--namespace',
    'mailfleet-system',
    ...valueFiles.flatMap((f) => ['-f', f]),
    ...set.flatMap((s) => ['--set', s]),
  ]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}
