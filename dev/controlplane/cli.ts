// Local control plane for development: node dev/controlplane/cli.ts up|down|status
//   up      start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok in the
//           background, write .local/kubeconfig and .local/cluster.json, print `export KUBECONFIG=...`
//   down    stop every process recorded in .local/cluster.json and remove its data dir
//   status  show the recorded processes and whether kube-apiserver answers /readyz
import fs from 'node:fs';
import path from 'node:path';
import type { ClusterState } from './cluster.ts';
import {
  REPO_ROOT,
  exec,
  processAlive,
  resolveBinaries,
  startControlPlane,
  stopFromState,
} from './cluster.ts';

const LOCAL = path.join(REPO_ROOT, '.local');
const STATE_FILE = path.join(LOCAL, 'cluster.json');
const KUBECONFIG = path.join(LOCAL, 'kubeconfig');

function readState(): ClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(STATE_FILE, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

const log = (message: string): void => {
  process.stderr.write(`cluster: ${message}\n`);
};

async function up(): Promise<number> {
  const existing = readState();
  if (existing && existing.processes.some(processAlive)) {
    log(`already running (${STATE_FILE}); use "down" first to restart`);
    process.stdout.write(`export KUBECONFIG=${existing.kubeconfig}\n`);
    return 0;
  }
  if (process.env.MAILFLEET_TEST_KUBECONFIG) {
    log('MAILFLEET_TEST_KUBECONFIG is set: nothing to start, use that cluster');
    process.stdout.write(`export KUBECONFIG=${path.resolve(process.env.MAILFLEET_TEST_KUBECONFIG)}\n`);
    return 0;
  }
  const started = Date.now();
  const cp = await startControlPlane({ kubeconfigPath: KUBECONFIG, detached: true, log });
  if (!cp.state) throw new Error('unexpected: local control plane has no state');
  fs.mkdirSync(LOCAL, { recursive: true });
  fs.writeFileSync(STATE_FILE, JSON.stringify(cp.state(), null, 2) + '\n');
  log(`up in ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${path.join(cp.dir ?? '', 'logs')}`);
  log(`state in ${STATE_FILE}; stop with: node dev/controlplane/cli.ts down`);
  process.stdout.write(`export KUBECONFIG=${cp.kubeconfig}\n`);
  return 0;
}

async function down(): Promise<number> {
  const state = readState();
  if (!state) {
    log(`nothing to stop (no ${STATE_FILE})`);
    return 0;
  }
  const stopped = await stopFromState(state);
  log(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'no recorded process was running');
  fs.rmSync(STATE_FILE, { force: true });
  if (state.kubeconfig === KUBECONFIG) fs.rmSync(KUBECONFIG, { force: true });
  return 0;
}

async function status(): Promise<number> {
  const state = readState();
  if (!state) {
    log(`not running (no ${STATE_FILE})`);
    return 1;
  }
  let alive = 0;
  for (const proc of state.processes) {
    const running = processAlive(proc);
    if (running) alive++;
    process.stdout.write(
      `${proc.name.padEnd(24)} pid ${String(proc.pid).padEnd(8)} ${running ? 'running' : 'NOT RUNNING'}\n`,
    );
  }
  let ready = 'unknown';
  const kubectl = (() => {
    try {
      return resolveBinaries({ build: false }).kubectl;
    } catch {
      return undefined;
    }
  })();
  const result = await exec(kubectl ?? 'kubectl', ['get', '--raw', '/readyz'], {
    env: { ...process.env, KUBECONFIG: state.kubeconfig },
    timeoutMs: 10_000,
  }).catch(() => undefined);
  ready =
    result?.code === 0 ? result.stdout.trim() : `not ready (${result?.stderr.trim() ?? 'kubectl missing'})`;
  process.stdout.write(`server ${state.server}: ${ready}\nexport KUBECONFIG=${state.kubeconfig}\n`);
  return alive === state.processes.length && result?.code === 0 ? 0 : 1;
}

const commands: Record<string, () => Promise<number>> = { up, down, status };
const command = commands[process.argv[2] ?? ''];
if (!command) {
  process.stderr.write('usage: node dev/controlplane/cli.ts up|down|status\n');
  process.exit(2);
}
try {
  process.exitCode = await command();
} catch (error) {
  process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
