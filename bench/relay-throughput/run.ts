// Relay throughput benchmark: mailfleet relay and Postfix on the same machine in the same run,
// both relaying to one smtp-sink, loaded with smtp-source (20 sessions). Not a test: it asserts
// nothing.
//
// The size axis: 2 KB (reused connections, and one message per connection), 10 KB, 100 KB and
// 1 MB with reused connections, and DKIM-signed 2 KB and 100 KB. Runs go in `--sweeps` passes
// over the workloads (default 1), each workload `--rounds` alternating runs of smtp-source per
// pass (default 3: mailfleet, Postfix, mailfleet, ...; the server that goes first swaps from one
// sweep to the next); the figures are the medians of every run, and the ratio is of the medians.
// `--sweeps 3 --rounds 1` spreads a workload's runs over the whole benchmark, so one slow spell of
// the machine does not hit all of them. Then, per server and unsigned workload: memory per
// in-flight message (PSS growth, and for mailfleet the V8 heap growth, with IN_FLIGHT messages held
// before their final dot) and the accept latency (end of DATA -> 250) of a paced load at 80 % of
// that server's median rate.
//
// DKIM workloads (`dkim`: 2 KB or --size, `dkim-100k`): both servers sign with the same rsa-sha256
// 2048-bit key, mailfleet at delivery (a second relay, configured to sign), Postfix through the
// Debian OpenDKIM milter (a second Postfix instance; private config and inet socket in the temp
// dir). Since mailfleet signs after the 250, the figure that counts is end to end: messages signed
// and delivered per second into a second sink that dumps every message (a sample from each run is
// checked for a signature). Postfix's CPU includes OpenDKIM's.
//
// Usage: scripts/node24.sh node bench/relay-throughput/run.ts [messages] [--rounds 3] [--sweeps 1]
//          [--sizes 2k,2k-conn,10k,100k,1m,dkim,dkim-100k] [--size B] [--workers N] [--json F] [--plan]
//          (root; --plan prints the message counts and the expected duration, and runs nothing)
// --workers: the relay's `workers` (processes, relay/src/workers/); default 1, the operator's default
// pod (2 on this busy machine did not help: RESULTS.md, Worker processes). CPU, memory and PSS of mailfleet are of all its processes.
// Message counts per run: 2 KB `messages`, 10 KB messages/2, 100 KB messages/5, 1 MB messages/25,
// DKIM 2 KB messages/5, DKIM 100 KB messages/10. The expected duration (from a quiet machine's
// rates) is printed first and the time taken last.
// CPU per message: relay process, or Postfix master + daemons (live and reaped), over the load and
// 3 s of delivery after it. --json writes every run and the summary.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { holdInFlight, pacedLatency, pss } from './load.ts';
import {
  estimateSeconds,
  pacedRate,
  perInFlightKiB,
  summarize,
  sweepOrder,
  type Extra,
  type Run,
  type Server,
} from './summary.ts';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readdirSync } from 'node:fs';
import { stringify } from 'yaml';
import { generateDkimKey } from '../../relay/src/dkim/keys.ts';
// A port the kernel just handed out: a random one in a range could still be held by the last run.
import { freePort } from '../../test/helpers/relay/peers.ts';
import { runSmtpSource, startPostfix, waitPort } from '../lib/smtp.ts';
import { benchRelayConfig, type BenchRelayConfig } from '../lib/relay-config.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MESSAGES = Number(
  process.argv
    .slice(2)
    .find(
      (a, i, args) =>
        /^\d+$/.test(a) && !['--size', '--rounds', '--sweeps', '--workers'].includes(args[i - 1]!),
    ) ?? 5000,
);
const SESSIONS = 20;
const sizeAt = process.argv.indexOf('--size');
/** Message size of the 2 KB workloads and of the `dkim` workload. */
const SIZE = sizeAt > 0 ? Number(process.argv[sizeAt + 1]) : 2048;
const option = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const ROUNDS = Number(option('--rounds') ?? 3);
const SWEEPS = Number(option('--sweeps') ?? 1);
const WORKERS = Number(option('--workers') ?? 1);
const SIZES = new Set((option('--sizes') ?? '2k,2k-conn,10k,100k,1m').split(','));
/** Messages held in flight at once for the memory figure. */
const IN_FLIGHT = 50;
/** Seconds before (1) and after (3) each unsigned run; a signed run waits for its deliveries instead. */
const PAUSES = { plain: 4.2, dkim: 2 };
/** Seconds of the memory and latency measurements of one server for one workload. */
const EXTRAS_SECONDS = 19;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Workload {
  key: string;
  label: string;
  reuse: boolean;
  size: number;
  count: number;
  /** Signed: measured end to end on the signing relay and on Postfix + OpenDKIM. */
  dkim?: boolean;
  /** msg/s on a quiet machine (RESULTS.md, 2026-11-30 and 2026-12-06): only for the duration estimate. */
  expected: Record<Server, number>;
}

const WORKLOADS: Workload[] = [
  {
    key: '2k',
    label: '2 KB',
    reuse: true,
    size: SIZE,
    count: MESSAGES,
    expected: { mailfleet: 2500, postfix: 1050 },
  },
  {
    key: '2k-conn',
    label: '2 KB, one per connection',
    reuse: false,
    size: SIZE,
    count: MESSAGES,
    expected: { mailfleet: 1330, postfix: 950 },
  },
  // Real transactional and newsletter mail is 10-100 KB, some of it 1 MB.
  {
    key: '10k',
    label: '10 KB',
    reuse: true,
    size: 10 * 1024,
    count: Math.ceil(MESSAGES / 2),
    expected: { mailfleet: 2640, postfix: 1510 },
  },
  {
    key: '100k',
    label: '100 KB',
    reuse: true,
    size: 100 * 1024,
    count: Math.ceil(MESSAGES / 5),
    expected: { mailfleet: 1310, postfix: 870 },
  },
  {
    key: '1m',
    label: '1 MB',
    reuse: true,
    size: 1024 * 1024,
    count: Math.ceil(MESSAGES / 25),
    expected: { mailfleet: 200, postfix: 195 },
  },
  {
    key: 'dkim',
    label: `DKIM ${SIZE % 1024 === 0 ? `${SIZE / 1024} KB` : `${SIZE} B`}, end to end`,
    reuse: true,
    size: SIZE,
    count: Math.ceil(MESSAGES / 5),
    dkim: true,
    expected: { mailfleet: 1090, postfix: 213 },
  },
  {
    key: 'dkim-100k',
    label: 'DKIM 100 KB, end to end',
    reuse: true,
    size: 100 * 1024,
    count: Math.ceil(MESSAGES / 10),
    dkim: true,
    expected: { mailfleet: 700, postfix: 203 },
  },
];

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

/** Waits until the sink directory holds at least `count` messages (`expected` only sizes the wait). */
async function delivered(dir: string, count: number, expected = 0): Promise<void> {
  const deadline = Date.now() + 60_000 + expected * 20;
  while (readdirSync(dir).length < count) {
    if (Date.now() > deadline) throw new Error(`only ${readdirSync(dir).length} of ${count} delivered`);
    await sleep(20);
  }
}

/**
 * A file of the dumping sink of about the message's size: a message written whole (smtp-sink
 * stores lines with LF, not CRLF: a 100 KB message is 99 KiB there).
 */
async function wholeDump(dir: string, size: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const whole = readdirSync(dir)
      .map((name) => join(dir, name))
      .find((path) => (statSync(path, { throwIfNoEntry: false })?.size ?? 0) >= size * 0.9);
    if (whole) return whole;
    await sleep(50);
  }
  throw new Error(`no whole message in ${dir}`);
}

/** Empties the dumping sink's directory between signed runs (1,000 x 100 KB per run otherwise piles up). */
function emptyDir(dir: string): void {
  for (const name of readdirSync(dir)) rmSync(join(dir, name), { force: true, recursive: true });
}

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

const loadAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
const startedAt = Date.now();
/** Minutes and seconds since the benchmark started, for the progress lines. */
const elapsed = () => {
  const s = Math.round((Date.now() - startedAt) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/** A relay process on `config` (YAML written to `dir/relay.yaml`), once it listens and is ready. */
async function startRelay(dir: string, config: BenchRelayConfig): Promise<ChildProcess> {
  writeFileSync(join(dir, 'relay.yaml'), stringify(config));
  const relay = spawn(
    process.execPath,
    [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', join(dir, 'relay.yaml')],
    {
      stdio: 'ignore',
    },
  );
  await waitPort(config.listeners.smtp.port);
  await waitReady(config.http.port);
  return relay;
}

async function main(): Promise<void> {
  const workloads = WORKLOADS.filter((w) => SIZES.has(w.key));
  const unknown = [...SIZES].filter((k) => !WORKLOADS.some((w) => w.key === k));
  if (unknown.length > 0) throw new Error(`unknown --sizes ${unknown.join(',')}`);
  const signed = workloads.some((w) => w.dkim);
  const expected = estimateSeconds(
    workloads.map((w) => ({
      count: w.count,
      rates: w.expected,
      warmUp: Math.min(500, w.count),
      perRun: w.dkim ? PAUSES.dkim : PAUSES.plain,
      extras: w.dkim ? 0 : EXTRAS_SECONDS,
    })),
    SWEEPS,
    ROUNDS,
  );
  process.stdout.write(
    `${workloads.map((w) => `${w.label}: ${w.count}`).join('; ')} messages per run; ${SWEEPS} sweep${SWEEPS === 1 ? '' : 's'} x ${ROUNDS} alternation${ROUNDS === 1 ? '' : 's'}; expected about ${Math.ceil(expected / 60)} min on a quiet machine (longer on a loaded one); load average ${loadAtStart}\n`,
  );
  if (process.argv.includes('--plan')) return; // the line above is all --plan asks for
  const work = mkdtempSync(join(tmpdir(), 'relay-bench-'));
  chmodSync(work, 0o755); // postfix's unprivileged daemons must traverse it
  const sinkPort = await freePort();
  const postfixPort = await freePort();
  const processes: ChildProcess[] = [];
  const postfixDirs: string[] = [];
  // A failure while setting up (before the try below) must not leave the sinks or relays running.
  process.once('exit', () => {
    for (const p of processes) p.kill('SIGTERM');
  });
  const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'root', `127.0.0.1:${sinkPort}`, '1000'], {
    stdio: 'ignore',
  });
  processes.push(sink);
  await waitPort(sinkPort);
  const config = benchRelayConfig({
    smtpPort: await freePort(),
    httpPort: await freePort(),
    sinkPort,
    spoolDir: join(work, 'spool'),
    accountingFile: join(work, 'accounting.jsonl'),
    workers: WORKERS,
  });
  const relay = await startRelay(work, config);
  processes.push(relay);
  const postfixDir = join(work, 'postfix');
  postfixDirs.push(postfixDir);
  // The signing side: its own relay, Postfix instance, OpenDKIM and dumping sink.
  const signing = signed ? await startSigning(work, processes, postfixDirs) : undefined;

  try {
    startPostfix(postfixDir, postfixPort, sinkPort);
    await waitPort(postfixPort);
    const masterPid = (dir: string) => Number(readFileSync(join(dir, 'queue/pid/master.pid'), 'utf8').trim());
    const portOf = (w: Workload, server: Server) =>
      w.dkim
        ? server === 'mailfleet'
          ? signing!.relayPort
          : signing!.postfixPort
        : server === 'mailfleet'
          ? config.listeners.smtp.port
          : postfixPort;
    const pidsOf = (w: Workload, server: Server) =>
      w.dkim
        ? server === 'mailfleet'
          ? processTree(signing!.relay.pid!)
          : [...processTree(masterPid(signing!.postfixDir)), signing!.opendkim.pid!]
        : server === 'mailfleet'
          ? processTree(relay.pid!)
          : processTree(masterPid(postfixDir));
    const reaperOf = (w: Workload, server: Server) =>
      server === 'postfix' ? masterPid(w.dkim ? signing!.postfixDir : postfixDir) : undefined;
    /** Messages per second: accepted by the server, or for a signed workload signed and in the sink. */
    const measure = async (w: Workload, server: Server, count: number): Promise<number> => {
      const port = portOf(w, server);
      if (!w.dkim) return smtpSource(port, w.reuse, count, w.size);
      emptyDir(signing!.sinkDir);
      const started = process.hrtime.bigint();
      smtpSource(port, w.reuse, count, w.size);
      await delivered(signing!.sinkDir, count, count);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // A whole dump (some may still be being written): the signature is its first header field.
      const sample = await wholeDump(signing!.sinkDir, w.size);
      if (!readFileSync(sample, 'latin1').includes('DKIM-Signature: v=1;'))
        throw new Error(`${w.label}: a message from ${server} reached the sink unsigned`);
      return count / seconds;
    };
    const warm = new Set<string>();
    for (const { workload, server, round } of sweepOrder(workloads, SWEEPS, ROUNDS)) {
      const { count } = workload;
      if (!warm.has(`${workload.key} ${server}`)) await measure(workload, server, Math.min(500, count)); // warm-up
      warm.add(`${workload.key} ${server}`);
      await sleep(1000);
      const reaper = reaperOf(workload, server);
      const cpuBefore = cpuSeconds(pidsOf(workload, server), reaper);
      const rate = await measure(workload, server, count);
      // Let deliveries to the sink finish: they count in CPU per message (a signed run waited for them).
      await sleep(workload.dkim ? 500 : 3000);
      const cpu = cpuSeconds(pidsOf(workload, server), reaper) - cpuBefore;
      const run: Run = {
        workload: workload.label,
        server,
        round,
        messagesPerSecond: rate,
        cpuMsPerMessage: (cpu * 1000) / count,
      };
      runs.push(run);
      process.stdout.write(
        `  [${elapsed()}] ${workload.label} ${server} round ${round + 1}: ${rate.toFixed(0)} msg/s, ${run.cpuMsPerMessage.toFixed(2)} ms CPU/msg (load ${loadAverage()})\n`,
      );
    }
    for (const workload of workloads.filter((w) => !w.dkim)) {
      const { size } = workload;
      for (const server of ['mailfleet', 'postfix'] as const) {
        const port = portOf(workload, server);
        const held =
          server === 'mailfleet'
            ? await freshRelayHold(work, config, size)
            : await holdInFlight({
                port,
                count: IN_FLIGHT,
                size,
                measure: () => ({ pss: pss(pidsOf(workload, server)), heap: 0 }),
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
              ? pidsOf(workload, server).reduce((a, pid) => a + peakRss(pid), 0)
              : totalRss(pidsOf(workload, server)),
        };
        extras.push(extra);
        process.stdout.write(
          `  [${elapsed()}] ${workload.label} ${server}: ${extra.inFlightKiB.toFixed(0)} KiB per in-flight message; accept p50 ${latency.p50.toFixed(1)} / p99 ${latency.p99.toFixed(1)} ms at ${latency.achieved.toFixed(0)} of ${target.toFixed(0)} msg/s\n`,
        );
        await sleep(2000); // let deliveries to the sink settle between runs
      }
    }
  } finally {
    for (const dir of postfixDirs)
      spawnSync('postfix', ['-c', join(dir, 'conf'), 'stop'], { stdio: 'ignore' });
    for (const p of processes) p.kill('SIGTERM');
    await sleep(500);
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`\n${report(summarize(runs, extras)).join('\n')}\n`);
  process.stdout.write(
    `\ntook ${elapsed()} (min:s); expected about ${Math.ceil(expected / 60)} min on a quiet machine\n`,
  );
}

/**
 * The signing side, started only when a DKIM workload runs: a relay signing example.com's mail, a
 * Postfix instance with OpenDKIM as its milter (same key), both relaying to a sink that dumps every
 * message into `sinkDir` so that deliveries can be counted and checked.
 */
async function startSigning(
  work: string,
  processes: ChildProcess[],
  postfixDirs: string[],
): Promise<{
  relay: ChildProcess;
  relayPort: number;
  opendkim: ChildProcess;
  postfixDir: string;
  postfixPort: number;
  sinkDir: string;
}> {
  const dir = join(work, 'signing');
  const sinkDir = join(dir, 'sink');
  mkdirSync(sinkDir, { recursive: true });
  chmodSync(dir, 0o755);
  const sinkPort = await freePort();
  processes.push(
    spawn(
      '/usr/sbin/smtp-sink',
      ['-u', 'root', '-d', `${sinkDir}/%H%M%S.`, `127.0.0.1:${sinkPort}`, '1000'],
      {
        stdio: 'ignore',
      },
    ),
  );
  await waitPort(sinkPort);
  const keyFile = join(dir, 'dkim.pem');
  writeFileSync(keyFile, generateDkimKey('rsa-sha256'), { mode: 0o600 });
  const milterPort = await freePort();
  const opendkim = startOpendkim(join(dir, 'opendkim'), milterPort, keyFile);
  processes.push(opendkim);
  await waitPort(milterPort);
  const config = benchRelayConfig({
    smtpPort: await freePort(),
    httpPort: await freePort(),
    sinkPort,
    spoolDir: join(dir, 'spool'),
    accountingFile: join(dir, 'accounting.jsonl'),
    dkimKeyFile: keyFile,
    workers: WORKERS,
  });
  const relay = await startRelay(dir, config);
  processes.push(relay);
  const postfixDir = join(dir, 'postfix');
  const postfixPort = await freePort();
  postfixDirs.push(postfixDir);
  startPostfix(postfixDir, postfixPort, sinkPort, { milterPort });
  await waitPort(postfixPort);
  return { relay, relayPort: config.listeners.smtp.port, opendkim, postfixDir, postfixPort, sinkDir };
}

/** The summary as a Markdown table: medians of the alternating runs, ratio, memory, latency. */
function report(rows: ReturnType<typeof summarize>): string[] {
  const kib = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(0));
  const latency = (e: Extra | undefined) =>
    e
      ? `${e.acceptP50Ms.toFixed(1)} / ${e.acceptP99Ms.toFixed(1)} (${e.pacedAchieved.toFixed(0)} msg/s)`
      : '-';
  return [
    `${SWEEPS * ROUNDS} alternating runs per workload (${SWEEPS} sweep${SWEEPS === 1 ? '' : 's'} x ${ROUNDS}; mailfleet with ${WORKERS} worker process${WORKERS === 1 ? '' : 'es'}, Postfix, ...), medians; ${SESSIONS} sessions, smtp-source; ${MESSAGES} messages of 2 KB (10 KB: ${Math.ceil(MESSAGES / 2)}, 100 KB: ${Math.ceil(MESSAGES / 5)}, 1 MB: ${Math.ceil(MESSAGES / 25)}, DKIM 2 KB: ${Math.ceil(MESSAGES / 5)}, DKIM 100 KB: ${Math.ceil(MESSAGES / 10)}) per run; load average ${loadAtStart} at the start, ${loadAverage()} at the end`,
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
  config: BenchRelayConfig,
  size: number,
): Promise<{ before: { pss: number; heap: number }; during: { pss: number; heap: number }[] }> {
  const smtpPort = await freePort();
  const httpPort = await freePort();
  const dir = mkdtempSync(join(work, `memory-${size}-`));
  const relay = await startRelay(dir, {
    ...config,
    listeners: { smtp: { ...config.listeners.smtp, port: smtpPort } },
    http: { ...config.http, port: httpPort },
    spool: { ...config.spool, dir: join(dir, 'spool') },
    accounting: { file: join(dir, 'accounting.jsonl') },
  });
  try {
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
if (jsonAt > 0 && process.argv[jsonAt + 1] && !process.argv.includes('--plan')) {
  writeFileSync(
    process.argv[jsonAt + 1]!,
    `${JSON.stringify(
      {
        bench: 'relay-throughput',
        sessions: SESSIONS,
        rounds: SWEEPS * ROUNDS,
        sweeps: SWEEPS,
        messages: MESSAGES,
        seconds: Math.round((Date.now() - startedAt) / 1000),
        finishedAt: new Date().toISOString(),
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
