// Where the relay's time goes for one message size: a relay under `node --cpu-prof` relaying to
// smtp-sink, loaded by smtp-source (20 sessions, reused connections), then the profile's self time
// summed by function and by file, and the process's user/system CPU split. Not a test.
//
// Usage: scripts/node24.sh node bench/relay-throughput/profile.ts [--size 102400] [--messages 2000]
//          [--out DIR] [--trace-gc] [--dkim]   (root; the .cpuprofile stays in DIR for Chrome DevTools)
// --dkim: example.com's mail is signed at delivery (rsa-sha256 2048), as in run.ts --dkim.
// --relay-root DIR: run the relay of another checkout (with its node_modules), e.g. the tree before
// a change, to compare the two in one session.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../../test/helpers/relay/peers.ts';
import { runSmtpSource, waitPort } from '../lib/smtp.ts';
import { benchRelayConfig } from '../lib/relay-config.ts';
import { generateDkimKey } from '../../relay/src/dkim/keys.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '102400' },
    messages: { type: 'string', default: '2000' },
    out: { type: 'string' },
    'trace-gc': { type: 'boolean', default: false },
    dkim: { type: 'boolean', default: false },
    'relay-root': { type: 'string' },
  },
});
const size = Number(values.size);
const messages = Number(values.messages);

interface Node {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

/** Self time per function and per file from a V8 .cpuprofile, largest first. */
export function selfTimes(profile: { nodes: Node[]; samples: number[] }): {
  byFunction: [string, number][];
  byFile: [string, number][];
} {
  const total = profile.samples.length;
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  for (const n of profile.nodes) {
    if (!n.hitCount) continue;
    const url = n.callFrame.url
      .replace(/^file:\/\/.*?node_modules\//, '')
      .replace(/^file:\/\/.*?\/wt-\d+\//, '');
    const name = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + n.hitCount);
    const key = url || n.callFrame.functionName;
    file.set(key, (file.get(key) ?? 0) + n.hitCount);
  }
  const pct = (m: Map<string, number>) =>
    [...m].map(([k, v]) => [k, (100 * v) / total] as [string, number]).sort((a, b) => b[1] - a[1]);
  return { byFunction: pct(fn), byFile: pct(file) };
}

/**
 * Share of the profile's samples between `from` and `to` (CLOCK_MONOTONIC microseconds, the clock of
 * V8's sample timestamps and of process.hrtime) that were not idle: how busy the relay's main
 * thread (its event loop) was during the load.
 */
export function busyShare(
  profile: { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number },
  from: number,
  to: number,
): number {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  let t = profile.startTime;
  let inWindow = 0;
  let busy = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i]!;
    if (t < from || t > to) return;
    inWindow++;
    if (!idle.has(id)) busy++;
  });
  return inWindow === 0 ? NaN : busy / inWindow;
}

/** Jiffies of the whole machine (/proc/stat): busy (all but idle and iowait) and in all. */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

/** CPU seconds of this process's reaped children: smtp-source, run by spawnSync. */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

function cpu(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
}

const work = mkdtempSync(join(tmpdir(), 'relay-profile-'));
const out = values.out ?? join(work, 'profile');
mkdirSync(out, { recursive: true });
const sinkPort = await freePort();
const relayPort = await freePort();
const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'root', `127.0.0.1:${sinkPort}`, '1000'], {
  stdio: 'ignore',
});
await waitPort(sinkPort);
if (values.dkim) writeFileSync(join(work, 'dkim.pem'), generateDkimKey('rsa-sha256'), { mode: 0o600 });
writeFileSync(
  join(work, 'relay.yaml'),
  stringify(
    benchRelayConfig({
      smtpPort: relayPort,
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
  [
    ...(values['trace-gc'] ? ['--trace-gc'] : []),
    '--cpu-prof',
    '--cpu-prof-dir',
    out,
    join(values['relay-root'] ?? ROOT, 'bin/mailfleet.ts'),
    'relay',
    '--config',
    join(work, 'relay.yaml'),
  ],
  // With --trace-gc the relay's stdout (its log and V8's GC lines) goes to DIR/relay.log.
  { stdio: ['ignore', values['trace-gc'] ? openSync(join(out, 'relay.log'), 'w') : 'ignore', 'ignore'] },
);
await waitPort(relayPort);
runSmtpSource(relayPort, { reuse: true, count: Math.min(200, messages), size, sessions: 20 }); // warm-up
await new Promise((r) => setTimeout(r, 1000));
const before = cpu(relay.pid!);
const sinkBefore = cpu(sink.pid!);
const sourceBefore = childrenCpu();
const machineBefore = machineTicks();
const loadFrom = Number(process.hrtime.bigint() / 1000n);
const rate = runSmtpSource(relayPort, { reuse: true, count: messages, size, sessions: 20 });
const loadTo = Number(process.hrtime.bigint() / 1000n);
// Over the load only: where the machine's two cores went while smtp-source ran.
const machineDuring = machineTicks();
const relayDuring = cpu(relay.pid!);
const sinkDuring = cpu(sink.pid!);
const sourceCpu = childrenCpu() - sourceBefore;
await new Promise((r) => setTimeout(r, 3000));
const after = cpu(relay.pid!);
const peakRssMiB =
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${relay.pid}/status`, 'utf8'))?.[1]) / 1024;
relay.kill('SIGTERM');
await new Promise((r) => relay.once('exit', r));
sink.kill('SIGTERM');
const file = readdirSync(out).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error('no profile written');
const profile = JSON.parse(readFileSync(join(out, file), 'utf8'));
const { byFunction, byFile } = selfTimes(profile);
const ms = (s: number) => ((s * 1000) / messages).toFixed(2);
const seconds = (loadTo - loadFrom) / 1e6;
const cores = (s: number) => (s / seconds).toFixed(2);
const machineBusy = (machineDuring.busy - machineBefore.busy) / (machineDuring.total - machineBefore.total);
const relayLoad = relayDuring.user + relayDuring.system - before.user - before.system;
const sinkLoad = sinkDuring.user + sinkDuring.system - sinkBefore.user - sinkBefore.system;
process.stdout.write(
  [
    `${messages} messages of ${size} bytes: ${rate.toFixed(0)} msg/s; relay CPU per message ${ms(after.user - before.user)} ms user + ${ms(after.system - before.system)} ms system, peak RSS ${peakRssMiB.toFixed(0)} MiB (load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`,
    `during the load (${seconds.toFixed(2)} s): machine ${(100 * machineBusy).toFixed(0)} % busy over ${cpus().length} cores; in cores: relay ${cores(relayLoad)} (main thread ${(100 * busyShare(profile, loadFrom, loadTo)).toFixed(0)} % busy), smtp-source ${cores(sourceCpu)}, smtp-sink ${cores(sinkLoad)}; CPU ms per message: relay ${ms(relayLoad)}, smtp-source ${ms(sourceCpu)}, smtp-sink ${ms(sinkLoad)}`,
    `profile: ${join(out, file)} (whole life of the relay, warm-up included)`,
    '',
    '| self % | function |',
    '|---|---|',
    ...byFunction.slice(0, 30).map(([k, v]) => `| ${v.toFixed(1)} | ${k} |`),
    '',
    '| self % | file |',
    '|---|---|',
    ...byFile.slice(0, 20).map(([k, v]) => `| ${v.toFixed(1)} | ${k} |`),
    '',
  ].join('\n'),
);
if (values['trace-gc']) {
  // V8's --trace-gc lines: "[pid:addr] 1234 ms: Scavenge 40.1 (42.3) -> 39.0 (43.3) MB, pooled: 0 MB,
  // 1.20 / 0.00 ms ..." (the pause; incremental marking steps before it are not counted).
  const gcs = new Map<string, { count: number; ms: number }>();
  for (const m of readFileSync(join(out, 'relay.log'), 'utf8').matchAll(
    /ms: ([A-Za-z-]+) .*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \//g,
  )) {
    const kind = gcs.get(m[1]!) ?? { count: 0, ms: 0 };
    gcs.set(m[1]!, { count: kind.count + 1, ms: kind.ms + Number(m[2]) });
  }
  for (const [kind, { count, ms: total }] of gcs)
    process.stdout.write(`GC ${kind}: ${count} pauses, ${total.toFixed(0)} ms in all\n`);
}
// The relay's spool and config go; the profile stays (in DIR, or in the work directory printed above).
if (values.out) rmSync(work, { recursive: true, force: true });
else rmSync(join(work, 'spool'), { recursive: true, force: true });
