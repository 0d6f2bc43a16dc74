// A real `mailfleet tracker` process on loopback with the given key (and any further flags), for
// the tests that need its tracking port and its /metrics.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT, stopProcess, waitFor } from '../relay/peers.ts';

export interface TrackerProcess {
  proc: ChildProcess;
  /** http://127.0.0.1:<tracking port>: where /o/… and /c/… are served. */
  base: string;
  /** http://127.0.0.1:<metrics port>/metrics */
  metrics: string;
  metricsPort: number;
  stop(): Promise<void>;
}

export async function startTracker(keyFile: string, extra: string[] = []): Promise<TrackerProcess> {
  const proc = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/mailfleet.ts'),
      'tracker',
      ...['--key-file', keyFile, '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0'],
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(() => out.includes('"tracker started"'), 60_000, 'tracker to start');
  const line = out.split('\n').find((l) => l.includes('tracker started'))!;
  const ports = (JSON.parse(line) as { ports: { tracking: number; http: number } }).ports;
  return {
    proc,
    base: `http://127.0.0.1:${ports.tracking}`,
    metrics: `http://127.0.0.1:${ports.http}/metrics`,
    metricsPort: ports.http,
    stop: () => stopProcess(proc, 'SIGTERM'),
  };
}
