// CPU per message of two relay trees, same run, alternating: this checkout and another (e.g. the
// tree before a change, `git archive <commit>` with node_modules linked in). Each run starts a fresh
// relay relaying to smtp-sink, warms it up, then sends `messages` with smtp-source (20 sessions,
// reused connections) and waits until the relay's CPU time stops growing (everything delivered);
// the figure is the relay's user + system CPU over that, per message, and its peak RSS. Medians
// of the rounds. Not a test: it asserts nothing.
//
// Usage: scripts/node24.sh node bench/relay-throughput/cpu-compare.ts --before DIR
//          [--sizes 102400,1048576] [--rounds 3] [--dkim] [--messages 1000]   (root)
// --messages is for 100 KB; other sizes get the same bytes in all (1 MB: a tenth), at least 100.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../../test/helpers/relay/peers.ts';
import { generateDkimKey } from '../../relay/src/dkim/keys.ts';
import { benchRelayConfig } from '../lib/relay-config.ts';
import { runSmtpSource, waitPort } from '../lib/smtp.ts';
import { median } from './summary.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    sizes: { type: 'string', default: '102400,1048576' },
    rounds: { type: 'string', default: '3' },
    messages: { type: 'string', default: '1000' },
    dkim: { type: 'boolean', default: false },
  },
});
if (!values.before) throw new Error('--before DIR is required');
const trees = { before: resolve(values.before), after: ROOT };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;

/** User + system CPU seconds of a process. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Result {
  rate: number;
  cpuMs: number;
  peakRssMiB: number;
}

async function measure(root: string, size: number, messages: number): Promise<Result> {
  const work = mkdtempSync(join(tmpdir(), 'relay-cpu-'));
  const sinkPort = await freePort();
  const smtpPort = await freePort();
  const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'root', `127.0.0.1:${sinkPort}`, '1000'], {
    stdio: 'ignore',
  });
  if (values.dkim) writeFileSync(join(work, 'dkim.pem'), generateDkimKey('rsa-sha256'), { mode: 0o600 });
  writeFileSync(
    join(work, 'relay.yaml'),
    stringify(
      benchRelayConfig({
        smtpPort,
        httpPort: await freePort(),
        sinkPort,
        spoolDir: join(work, 'spool'),
        accountingFile: join(work, 'accounting.jsonl'),
        ...(values.dkim ? { dkimKeyFile: join(work, 'dkim.pem') } : {}),
      }),
    ),
  );
  const relay = spawn(
    process.execPath,
    [join(root, 'bin/mailfleet.ts'), 'relay', '--config', join(work, 'relay.yaml')],
    { stdio: 'ignore' },
  );
  try {
    await waitPort(sinkPort);
    await waitPort(smtpPort);
    runSmtpSource(smtpPort, { reuse: true, count: Math.min(100, messages), size, sessions: 20 });
    await settled(relay.pid!);
    const before = cpuSeconds(relay.pid!);
    const rate = runSmtpSource(smtpPort, { reuse: true, count: messages, size, sessions: 20 });
    const after = await settled(relay.pid!);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${relay.pid}/status`, 'utf8'))?.[1];
    return { rate, cpuMs: ((after - before) * 1000) / messages, peakRssMiB: Number(hwm) / 1024 };
  } finally {
    relay.kill('SIGTERM');
    sink.kill('SIGTERM');
    await new Promise((r) => relay.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}

/** The process's CPU seconds once they stopped growing for a second (its queue is delivered). */
async function settled(pid: number): Promise<number> {
  let last = cpuSeconds(pid);
  for (let i = 0; i < 60; i++) {
    await sleep(1000);
    const now = cpuSeconds(pid);
    if (now - last < 0.02) return now;
    last = now;
  }
  return last;
}

const rows: string[] = [];
const loadAtStart = load();
for (const size of values.sizes.split(',').map(Number)) {
  const messages = Math.max(100, Math.round((Number(values.messages) * 102400) / size));
  const results: Record<'before' | 'after', Result[]> = { before: [], after: [] };
  for (let round = 0; round < Number(values.rounds); round++) {
    const order = round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const);
    for (const tree of order) {
      const r = await measure(trees[tree], size, messages);
      results[tree].push(r);
      process.stdout.write(
        `  ${size} B ${tree} round ${round + 1}: ${r.rate.toFixed(0)} msg/s, ${r.cpuMs.toFixed(2)} ms CPU/msg, peak RSS ${r.peakRssMiB.toFixed(0)} MiB (load ${load()})\n`,
      );
    }
  }
  for (const tree of ['before', 'after'] as const) {
    const rs = results[tree];
    rows.push(
      `| ${size} | ${values.dkim ? 'yes' : 'no'} | ${tree} | ${messages} | ${median(rs.map((r) => r.cpuMs)).toFixed(2)} (${rs.map((r) => r.cpuMs.toFixed(2)).join(', ')}) | ${median(rs.map((r) => r.rate)).toFixed(0)} | ${median(rs.map((r) => r.peakRssMiB)).toFixed(0)} |`,
    );
  }
}
process.stdout.write(
  [
    '',
    `relay CPU per message, medians of ${values.rounds} alternating rounds (load average ${loadAtStart} at start, ${load()} at end)`,
    '| size (B) | DKIM | tree | messages | CPU ms/msg (runs) | msg/s accepted | peak RSS MiB |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
);
