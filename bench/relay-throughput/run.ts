// Relay throughput benchmark: mailfleet relay and Postfix on the same machine in the same run,
// both relaying to one smtp-sink, loaded with smtp-source (20 sessions). Not a test: it asserts
// nothing.
//
// The size axis: 2 KB (reused connections, and one message per connection), 10 KB, 100 KB and
// 1 MB with reused connections. Per workload, `--rounds` (default 3) alternating runs of
// smtp-source (mailfleet, Postfix, mailfleet, ...); the figures are the medians, and the ratio is
// of the medians. Then, per server: memory per in-flight message (PSS growth, and for mailfleet the
// V8 heap growth, with IN_FLIGHT messages held before their final dot) and the accept latency
// (end of DATA -> 250) of a paced load at 80 % of that server's median rate.
//
// DKIM workload (--dkim): both servers sign with the same rsa-sha256 2048-bit key, mailfleet at
// delivery, Postfix through the Debian OpenDKIM milter (private config and inet socket in the
// temp dir, smtpd_milters in the private Postfix config). Since mailfleet signs after the 250,
// the figure that counts is end to end: messages signed and delivered into the sink per second
// (the sink dumps every message, and a sample from each server is checked for a signature).
//
// Usage: scripts/node24.sh node bench/relay-throughput/run.ts [messages] [--rounds 3]
//          [--sizes 2k,2k-conn,10k,100k,1m] [--dkim] [--size B] [--workers N] [--json F]   (root)
// --workers: the relay's `workers` (processes, relay/src/workers/); default 1, the operator's default
// pod (2 on this busy machine did not help: RESULTS.md, Worker processes). CPU, memory and PSS of mailfleet are of all its processes.
// Message counts per run: 2 KB `messages`, 10 KB messages/2, 100 KB messages/5, 1 MB messages/25.
// CPU per message: relay process, or Postfix master + daemons (live and reaped), over the load and
// 3 s of delivery after it. --json writes every run and the summary.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { holdInFlight, pacedLatency, pss } from './load.ts';
import { alternation, pacedRate, perInFlightKiB, summarize, type Extra, type Run } from './summary.ts';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readdirSync } from 'node:fs';
import { stringify } from 'yaml';
import { generateDkimKey } from '../../relay/src/dkim/keys.ts';
// A port the kernel just handed out: a random one in a range could still be held by the last run.
import { freePort } from '../../test/helpers/relay/peers.ts';
import { runSmtpSource, startPostfix as startPostfixAt, waitPort } from '../lib/smtp.ts';
import { benchRelayConfig } from '../lib/relay-config.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MESSAGES = Number(
  process.argv
    .slice(2)
    .find((a, i, args) => /^\d+$/.test(a) && !['--size', '--rounds'].includes(args[i - 1]!)) ?? 5000,
);
const DKIM = process.argv.includes('--dkim');
const SESSIONS = 20;
const sizeAt = process.argv.indexOf('--size');
/** Message size of the 2 KB workloads and of --dkim (`--size 102400` signs 100 KB messages). */
const SIZE = sizeAt > 0 ? Number(process.argv[sizeAt + 1]) : 2048;
const option = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const ROUNDS = Number(option('--rounds') ?? 3);
const WORKERS = Number(option('--workers') ?? 1);
const SIZES = new Set((option('--sizes') ?? '2k,2k-conn,10k,100k,1m').split(','));
/** Messages held in flight at once for the memory figure. */
const IN_FLIGHT = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function smtpSource(port: number, reuse: boolean, count: number, size = SIZE): number {
  return runSmtpSource(port, { reuse, count, size, sessions: SESSIONS });
}

/** OpenDKIM as a signing milter on an inet socket, its config and key in `dir`. */
function startOpendkim(dir: string, port: number, keyFile: string): ChildProcess {
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'opendkim.conf');
  writeFileSync(
    conf,
    [
      'Syslog no',
      'Mode s',
      `Socket inet:${port}@127.0.0.1`,
      'Domain example.com',
      'Selector s2048',
      `KeyFile ${keyFile}`,
      'Canonicalization relaxed/relaxed',
      'SignatureAlgorithm rsa-sha256',
      'OversignHeaders From',
      `PidFile ${dir}/opendkim.pid`,
      'RequireSafeKeys no',
      '',
    ].join('\n'),
  );
  return spawn('/usr/sbin/opendkim', ['-f', '-x', conf], { stdio: 'ignore' });
}

function startPostfix(dir: string, port: number, sinkPort: number, milterPort?: number): void {
  startPostfixAt(dir, port, sinkPort, milterPort ? { milterPort } : {});
}

/** Waits until the sink directory holds at least `count` messages (`expected` only sizes the wait). */
async function delivered(dir: string, count: number, expected = 0): Promise<void> {
  const deadline = Date.now() + 60_000 + expected * 20;
  while (readdirSync(dir).length < count) {
    if (Date.now() > deadline) throw new Error(`only ${readdirSync(dir).length} of ${count} delivered`);
    await sleep(20);
  }
}

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

const loadAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'relay-bench-'));
  chmodSync(work, 0o755); // postfix's unprivileged daemons must traverse it
  const sinkPort = await freePort();
  const postfixPort = await freePort();
  const processes: ChildProcess[] = [];
  // A failure while setting up (before the try below) must not leave the sink or relay running.
  process.once('exit', () => {
    for (const p of processes) p.kill('SIGTERM');
  });
  const sinkDir = join(work, 'sink');
  mkdirSync(sinkDir);
  // With --dkim the sink dumps every message, so deliveries can be counted and checked.
  const sink = spawn(
    '/usr/sbin/smtp-sink',
    ['-u', 'root', ...(DKIM ? ['-d', `${sinkDir}/%H%M%S.`] : []), `127.0.0.1:${sinkPort}`, '1000'],
    { stdio: 'ignore' },
  );
  processes.push(sink);
  await waitPort(sinkPort);
  const relayPort = await freePort();
  const httpPort = await freePort();
  const config = benchRelayConfig({
    smtpPort: relayPort,
    httpPort,
    sinkPort,
    spoolDir: join(work, 'spool'),
    accountingFile: join(work, 'accounting.jsonl'),
    ...(DKIM ? { dkimKeyFile: join(work, 'dkim.pem') } : {}),
    workers: WORKERS,
  });
  writeFileSync(join(work, 'dkim.pem'), generateDkimKey('rsa-sha256'), { mode: 0o600 });
  writeFileSync(join(work, 'relay.yaml'), stringify(config));
  const milterPort = await freePort();
  if (DKIM) {
    processes.push(startOpendkim(join(work, 'opendkim'), milterPort, join(work, 'dkim.pem')));
    await waitPort(milterPort);
  }
  const relay = spawn(
    process.execPath,
    [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', join(work, 'relay.yaml')],
    {
      stdio: 'ignore',
    },
  );
  processes.push(relay);
  await waitPort(relayPort);
  await waitReady(httpPort);
  const postfixDir = join(work, 'postfix');
  try {
    startPostfix(postfixDir, postfixPort, sinkPort, DKIM ? milterPort : undefined);
  } catch (err) {
    for (const p of processes) p.kill('SIGTERM');
    throw err;
  }

  const rows: string[] = [];
  try {
    await waitPort(postfixPort);
    if (DKIM) {
      for (const [name, port] of [
        ['postfix+opendkim', postfixPort],
        ['mailfleet', relayPort],
      ] as const) {
        const warm = readdirSync(sinkDir).length;
        smtpSource(port, true, 500); // warm-up
        await delivered(sinkDir, warm + 500, 500);
        const before = readdirSync(sinkDir).length;
        const started = process.hrtime.bigint();
        const acceptRate = smtpSource(port, true, MESSAGES);
        await delivered(sinkDir, before + MESSAGES, MESSAGES);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const sample = readdirSync(sinkDir).sort().at(-1)!;
        const signed = readFileSync(join(sinkDir, sample), 'latin1').includes('DKIM-Signature: v=1;');
        rows.push(
          `| rsa-sha256 2048, reused connections | ${name} | ${acceptRate.toFixed(0)} | ${(MESSAGES / seconds).toFixed(0)} | ${signed ? 'yes' : 'NO'} |`,
        );
        process.stdout.write(`${rows.at(-1)}\n`);
        await sleep(2000);
      }
      process.stdout.write(
        [
          '',
          `DKIM: ${MESSAGES} messages of ${SIZE} bytes, ${SESSIONS} sessions, smtp-source -d; delivered = signed and in the sink`,
          '| workload | server | accepted/s | delivered/s (end to end) | sample signed |',
          '|---|---|---|---|---|',
          ...rows,
          '',
        ].join('\n'),
      );
      return;
    }
    const masterPid = () => Number(readFileSync(join(postfixDir, 'queue/pid/master.pid'), 'utf8').trim());
    const workloads = [
      { key: '2k', label: '2 KB', reuse: true, size: SIZE, count: MESSAGES },
      { key: '2k-conn', label: '2 KB, one per connection', reuse: false, size: SIZE, count: MESSAGES },
      // Real transactional and newsletter mail is 10-100 KB, some of it 1 MB.
      { key: '10k', label: '10 KB', reuse: true, size: 10 * 1024, count: Math.ceil(MESSAGES / 2) },
      { key: '100k', label: '100 KB', reuse: true, size: 100 * 1024, count: Math.ceil(MESSAGES / 5) },
      { key: '1m', label: '1 MB', reuse: true, size: 1024 * 1024, count: Math.ceil(MESSAGES / 25) },
    ].filter((w) => SIZES.has(w.key));
    const portOf = { mailfleet: relayPort, postfix: postfixPort } as const;
    const pidsOf = (server: 'mailfleet' | 'postfix') =>
      server === 'mailfleet' ? processTree(relay.pid!) : processTree(masterPid());
    for (const workload of workloads) {
      const { reuse, size, count } = workload;
      const warm = new Set<string>();
      for (const { server, round } of alternation(ROUNDS)) {
        const port = portOf[server];
        if (!warm.has(server)) smtpSource(port, reuse, Math.min(500, count), size); // warm-up
        warm.add(server);
        await sleep(1000);
        const reaper = server === 'postfix' ? masterPid() : undefined;
        const cpuBefore = cpuSeconds(pidsOf(server), reaper);
        const rate = smtpSource(port, reuse, count, size);
        await sleep(3000); // let deliveries to the sink finish: they count in CPU per message
        const cpu = cpuSeconds(pidsOf(server), reaper) - cpuBefore;
        const run: Run = {
          workload: workload.label,
          server,
          round,
          messagesPerSecond: rate,
          cpuMsPerMessage: (cpu * 1000) / count,
        };
        runs.push(run);
        process.stdout.write(
          `  ${workload.label} ${server} round ${round + 1}: ${rate.toFixed(0)} msg/s, ${run.cpuMsPerMessage.toFixed(2)} ms CPU/msg (load ${loadAverage()})\n`,
        );
      }
      for (const server of ['mailfleet', 'postfix'] as const) {
        const port = portOf[server];
        const held =
          server === 'mailfleet'
            ? await freshRelayHold(work, config, size)
            : await holdInFlight({
                port,
                count: IN_FLIGHT,
                size,
                measure: () => ({ pss: pss(pidsOf(server)), heap: 0 }),
              });
        await sleep(2000);
        const median = summarize(runs.filter((r) => r.workload === workload.label)).at(0)!;
        const target = pacedRate(median[server].messagesPerSecond);
        const latency = await pacedLatency({
          port,
          sessions: SESSIONS,
          rate: target,
          // About 3 s of load, at least 100 messages and at most 2000.
          count: Math.max(100, Math.min(2000, Math.round(target * 3))),
          size,
        });
        const extra: Extra = {
          workload: workload.label,
          server,
          // The largest of the samples: garbage collected during the hold only lowers them.
          inFlightKiB: perInFlightKiB(held.before.pss, Math.max(...held.during.map((d) => d.pss)), IN_FLIGHT),
          ...(server === 'mailfleet'
            ? {
                inFlightHeapKiB: perInFlightKiB(
                  held.before.heap,
                  Math.max(...held.during.map((d) => d.heap)),
                  IN_FLIGHT,
                ),
              }
            : {}),
          pacedTarget: target,
          pacedAchieved: latency.achieved,
          acceptP50Ms: latency.p50,
          acceptP99Ms: latency.p99,
          rssMiB:
            server === 'mailfleet'
              ? pidsOf(server).reduce((a, pid) => a + peakRss(pid), 0)
              : totalRss(pidsOf(server)),
        };
        extras.push(extra);
        process.stdout.write(
          `  ${workload.label} ${server}: ${extra.inFlightKiB.toFixed(0)} KiB per in-flight message; accept p50 ${latency.p50.toFixed(1)} / p99 ${latency.p99.toFixed(1)} ms at ${latency.achieved.toFixed(0)} of ${target.toFixed(0)} msg/s\n`,
        );
        await sleep(2000); // let deliveries to the sink settle between runs
      }
    }
  } finally {
    spawnSync('postfix', ['-c', join(postfixDir, 'conf'), 'stop'], { stdio: 'ignore' });
    for (const p of processes) p.kill('SIGTERM');
    await sleep(500);
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`\n${report(summarize(runs, extras)).join('\n')}\n`);
}

/** The summary as a Markdown table: medians of the alternating runs, ratio, memory, latency. */
function report(rows: ReturnType<typeof summarize>): string[] {
  const kib = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(0));
  const latency = (e: Extra | undefined) =>
    e
      ? `${e.acceptP50Ms.toFixed(1)} / ${e.acceptP99Ms.toFixed(1)} (${e.pacedAchieved.toFixed(0)} msg/s)`
      : '-';
  return [
    `${ROUNDS} alternating runs per workload (mailfleet with ${WORKERS} worker process${WORKERS === 1 ? '' : 'es'}, Postfix, ...), medians; ${SESSIONS} sessions, smtp-source; ${MESSAGES} messages of 2 KB (10 KB: ${Math.ceil(MESSAGES / 2)}, 100 KB: ${Math.ceil(MESSAGES / 5)}, 1 MB: ${Math.ceil(MESSAGES / 25)}) per run; load average ${loadAtStart} at the start, ${loadAverage()} at the end`,
    '| workload | postfix msg/s (runs) | mailfleet msg/s (runs) | ratio | CPU ms/msg postfix / mailfleet | KiB per in-flight message postfix / mailfleet (heap) | accept p50 / p99 ms at 80 % load: postfix | mailfleet |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const p = r.postfix;
      const m = r.mailfleet;
      const rates = (s: typeof p) => s.rates.map((x) => x.toFixed(0)).join(', ');
      return `| ${r.workload} | ${p.messagesPerSecond.toFixed(0)} (${rates(p)}) | ${m.messagesPerSecond.toFixed(0)} (${rates(m)}) | ${r.ratio.toFixed(2)}x | ${p.cpuMsPerMessage.toFixed(2)} / ${m.cpuMsPerMessage.toFixed(2)} | ${kib(p.extra?.inFlightKiB)} / ${kib(m.extra?.inFlightKiB)} (${kib(m.extra?.inFlightHeapKiB)}) | ${latency(p.extra)} | ${latency(m.extra)} |`;
    }),
  ];
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;
}

/**
 * Memory per in-flight message of mailfleet, on a relay started for it (same config, own ports
 * and spool): after the throughput runs the relay's heap holds their garbage, and what V8 frees of
 * it during the hold hid the growth (0-53 KiB per 1 MB message measured that way).
 */
async function freshRelayHold(
  work: string,
  config: { listeners: { smtp: object }; http: object; spool: object },
  size: number,
): Promise<{ before: { pss: number; heap: number }; during: { pss: number; heap: number }[] }> {
  const smtpPort = await freePort();
  const httpPort = await freePort();
  const dir = mkdtempSync(join(work, `memory-${size}-`));
  const fresh = {
    ...config,
    listeners: { smtp: { ...config.listeners.smtp, port: smtpPort } },
    http: { ...config.http, port: httpPort },
    spool: { ...config.spool, dir: join(dir, 'spool') },
    accounting: { file: join(dir, 'accounting.jsonl') },
  };
  writeFileSync(join(dir, 'relay.yaml'), stringify(fresh));
  const relay = spawn(
    process.execPath,
    [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', join(dir, 'relay.yaml')],
    {
      stdio: 'ignore',
    },
  );
  try {
    await waitPort(smtpPort);
    await waitReady(httpPort);
    return await holdInFlight({
      port: smtpPort,
      count: IN_FLIGHT,
      size,
      measure: async () => ({ pss: pss(processTree(relay.pid!)), heap: await relayHeapUsed(httpPort) }),
    });
  } finally {
    relay.kill('SIGTERM');
  }
}

/** Waits until every worker of the relay listens (/readyz passes). */
async function waitReady(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error('relay not ready');
}

/** The relay's V8 heap in use (prom-client's default metric, summed over its processes), bytes. */
async function relayHeapUsed(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^mailfleet_relay_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? NaN);
}

/** pid and all its descendants (Postfix: master and the daemons it runs). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** CPU seconds (user + system) of `pids`; with `reaper`, also its reaped children's. */
function cpuSeconds(pids: number[], reaper?: number): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(f[11]) + Number(f[12]); // utime, stime
      if (pid === reaper) total += Number(f[13]) + Number(f[14]); // cutime, cstime
    } catch {
      // exited meanwhile: its time moved to the reaper's cutime/cstime
    }
  }
  return total / tick;
}

function totalRss(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}

const runs: Run[] = [];
const extras: Extra[] = [];
await main();
const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0 && process.argv[jsonAt + 1]) {
  writeFileSync(
    process.argv[jsonAt + 1]!,
    `${JSON.stringify(
      {
        bench: DKIM ? 'relay-dkim' : 'relay-throughput',
        sessions: SESSIONS,
        rounds: ROUNDS,
        workers: WORKERS,
        loadAtStart,
        loadAtEnd: loadAverage(),
        summary: summarize(runs, extras),
        runs,
      },
      null,
      2,
    )}\n`,
  );
}
