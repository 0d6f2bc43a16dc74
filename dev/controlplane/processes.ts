// Supervision of the control plane's processes: start one with its log file, stop it (SIGTERM, then
// SIGKILL after a grace period), wait for a condition while failing fast when a watched process
// exits, and clean up children and temp dirs when this Node.js process exits without stop().
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ClusterState, Component, ExecResult } from './types.ts';

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

export interface Managed {
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

export function launch(
  name: Component,
  bin: string,
  args: string[],
  logDir: string,
  detached: boolean,
): Managed {
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

export async function terminate(proc: Managed, graceMs = 10_000): Promise<void> {
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

/**
 * Calls `probe` until it returns a value, failing at once (with the log's tail) when one of the
 * `watch`ed processes exits; dev/net.ts's waitFor is the plain condition poller.
 */
export async function probeWhileRunning<T>(
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

/** Removes `dir` if this process exits before the control plane's stop() (non-detached mode). */
export function removeOnExit(dir: string): void {
  installExitHook();
  liveTempDirs.add(dir);
}

/** stop() removed `dir` itself. */
export function removedDir(dir: string): void {
  liveTempDirs.delete(dir);
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
