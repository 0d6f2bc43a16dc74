// One command for every benchmark (`npm run bench` → this file): runs each bench, keeps its
// results in bench/results/<name>.json, draws docs/bench-relay.svg (throughput ratio, throughput,
// accept latency and CPU per size, mailfleet next to Postfix; the README's chart) and writes
// docs/benchmarks.md with the machine described.
//
// Usage: node bench/run.ts [--messages 5000] [--rounds 3] [--sweeps 1]
//          [--only relay,tracking,scheduler,operator,pool-rate,feedback,suppression]
//          [--sizes 2k,2k-conn,10k,100k,1m,dkim,dkim-100k]
//          [--pools 100] [--workers 1] [--report-only]
// relay: bench/relay-throughput/run.ts over the size axis, DKIM-signed 2 KB and 100 KB included;
// `npm run bench:relay` is the quiet-machine comparison (--only relay --sweeps 3 --rounds 1
// --messages 12000). --workers: the relay's worker processes (`npm run bench:relay -- --workers 2`).
// --report-only runs nothing and rewrites the report from bench/results/.
// Benches owned by others are run as they are; their printed tables are kept verbatim in the JSON.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderCharts } from './report/chart.ts';
import type { SummaryRow } from './relay-throughput/summary.ts';

const ROOT = resolve(import.meta.dirname, '..');
const RESULTS = join(ROOT, 'bench/results');
const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    sweeps: { type: 'string', default: '1' },
    workers: { type: 'string', default: '1' },
    only: {
      type: 'string',
      default: 'relay,tracking,scheduler,operator,pool-rate,feedback,suppression',
    },
    sizes: { type: 'string', default: '2k,2k-conn,10k,100k,1m,dkim,dkim-100k' },
    pools: { type: 'string', default: '100' },
    'report-only': { type: 'boolean', default: false },
  },
});
const only = new Set(values['report-only'] ? [] : values.only.split(','));
const started = Date.now();
mkdirSync(RESULTS, { recursive: true });

/** Runs a bench, its output shown as it comes (a relay sweep takes minutes) and kept. */
async function run(name: string, args: string[]): Promise<{ ok: boolean; stdout: string; seconds: number }> {
  const started = Date.now();
  process.stdout.write(`\n=== bench ${name}: node ${args.join(' ')}\n`);
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    process.stdout.write(chunk);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await new Promise<number | null>((done) => child.once('close', done));
  if (status !== 0) {
    process.stdout.write(`=== bench ${name} FAILED: ${stderr.slice(-2000)}\n`);
    process.exitCode = 1; // the report is still written, from the results that exist
  }
  return { ok: status === 0, stdout, seconds: (Date.now() - started) / 1000 };
}

/** Markdown table rows (and the lines around them) of a bench's output. */
function tables(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('|') || /^[A-Za-z0-9].*:/.test(l) || /^(all |created )/.test(l));
}

function saveRaw(name: string, result: { ok: boolean; stdout: string; seconds: number }): void {
  writeFileSync(
    join(RESULTS, `${name}.json`),
    `${JSON.stringify({ bench: name, ok: result.ok, seconds: result.seconds, at: new Date().toISOString(), output: tables(result.stdout) }, null, 2)}\n`,
  );
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout ?? '').trim();
}

function machine(relay: Record<string, unknown> | undefined): string[] {
  const fs = sh('df', ['-T', '/tmp']).split('\n')[1]?.split(/\s+/)[1] ?? '?';
  const postfix = sh('postconf', ['-d', 'mail_version']).split('=')[1]?.trim() ?? '?';
  return [
    `- CPU: ${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    `- Memory: ${(totalmem() / 2 ** 30).toFixed(0)} GiB; kernel ${release()}; /tmp on ${fs}`,
    `- Node ${process.versions.node}; Postfix ${postfix}; OpenDKIM ${sh('opendkim', ['-V']).split('\n')[0] ?? '?'}`,
    relay?.finishedAt
      ? `- Relay runs finished at ${String(relay.finishedAt)}, load average ${String(relay.loadAtStart)} at their start and ${String(relay.loadAtEnd)} at their end (above about 2 the machine was shared with other work: absolute figures are noisy, the same-run ratios are what count).`
      : `- Report written at ${new Date().toISOString()}; other work on the machine was not stopped (numbers are noisy).`,
  ];
}

const md: string[] = [];
if (only.has('relay')) {
  const relayRun = await run('relay-throughput', [
    'bench/relay-throughput/run.ts',
    values.messages,
    '--rounds',
    values.rounds,
    '--sweeps',
    values.sweeps,
    '--sizes',
    values.sizes,
    '--workers',
    values.workers,
    '--json',
    join(RESULTS, 'relay-throughput.json'),
  ]);
  // The signed workloads are rows of the relay's table now: the separate DKIM results are stale.
  for (const name of ['relay-dkim', 'relay-dkim-100k'])
    if (relayRun.ok && values.sizes.split(',').some((k) => k.startsWith('dkim')))
      rmSync(join(RESULTS, `${name}.json`), { force: true });
}
// Link tracking on vs off, same run (a fifth of --messages 30 KB newsletters; Postfix does not track).
if (only.has('tracking'))
  saveRaw(
    'tracking',
    await run('tracking', ['bench/tracking/run.ts', String(Math.ceil(Number(values.messages) / 5))]),
  );
if (only.has('scheduler') && existsSync(join(ROOT, 'bench/scheduler/run.ts')))
  saveRaw('scheduler', await run('scheduler', ['--expose-gc', 'bench/scheduler/run.ts']));
if (only.has('operator') && existsSync(join(ROOT, 'bench/operator-scale/run.ts')))
  saveRaw(
    'operator-scale',
    await run('operator-scale', ['bench/operator-scale/run.ts', '--pools', values.pools, '--idle', '60']),
  );
// Pool-wide limits over 3 relays and a real redis-server (GCRA rate, reject limit at RCPT TO,
// connection caps), each next to the static share and 3 Postfix instances (root: Postfix).
if (only.has('pool-rate'))
  saveRaw(
    'pool-rate',
    await run('pool-rate', [
      'bench/pool-rate/run.ts',
      '420',
      '--limit',
      '18',
      '--connection-messages',
      '120',
    ]),
  );
// Inbound DSN/ARF: reading one report in process per kind, and the return-path listener taking
// 5000 DSNs over SMTP next to Postfix queueing them (root: Postfix).
if (only.has('feedback'))
  saveRaw('feedback', await run('feedback', ['bench/feedback/run.ts', '--reports', '5000']));
// A million suppressed addresses at RCPT time: the relay with an empty and a full list next to
// Postfix without and with the same million in a hash: map, 10000 messages a run (root: Postfix).
if (only.has('suppression'))
  saveRaw('suppression', await run('suppression', ['--expose-gc', 'bench/suppression/run.ts', '10000']));

// The report, from whatever results exist (a partial --only run keeps the others' last results).
const load = (name: string) => {
  const path = join(RESULTS, `${name}.json`);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : undefined;
};
md.push(
  '# Benchmarks',
  '',
  'Generated by `npm run bench` (`node bench/run.ts`); raw results in `bench/results/`.',
  '',
);
const relay = load('relay-throughput');
md.push(
  "The quiet-machine comparison of the relay with Postfix (the table and chart below, the README's",
  'chart): `npm run bench:relay` (as root, for Postfix), which is `node bench/run.ts --only relay',
  '--sweeps 3 --rounds 1 --messages 12000`: three sweeps over 2 KB (reused connections and one',
  'message per connection), 10 KB, 100 KB, 1 MB and DKIM-signed 2 KB and 100 KB, mailfleet and',
  'Postfix alternating within each sweep (the one that goes first swaps every sweep), medians of the',
  'three runs per server; then memory and accept latency per size. It prints the expected duration',
  'first (about 10 minutes on a quiet 2-core machine) and the time taken last, then rewrites this',
  'file, `docs/bench-relay.svg` and `bench/results/relay-throughput.json`.',
  '`node bench/relay-throughput/run.ts 12000 --sweeps 3 --rounds 1 --plan --sizes',
  '2k,2k-conn,10k,100k,1m,dkim,dkim-100k` prints the counts and the expected duration without running.',
  '',
);
md.push('## Machine', '', ...machine(relay), '');
if (relay?.summary) {
  const rows = relay.summary as SummaryRow[];
  const kib = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(0));
  const latency = (r: SummaryRow['postfix']) =>
    r.extra ? `${r.extra.acceptP50Ms.toFixed(1)} / ${r.extra.acceptP99Ms.toFixed(1)}` : '-';
  md.push(
    '## Relay vs Postfix by message size',
    '',
    'Same machine, same run; both relay to one `smtp-sink`; load from `smtp-source` (20 sessions, reused',
    `connections unless said); mailfleet with \`workers: ${String(relay.workers ?? 1)}\` (processes, docs/architecture.md).`,
    `Per size, ${String(relay.rounds)} alternating runs (mailfleet, Postfix, ...${relay.sweeps && Number(relay.sweeps) > 1 ? `, in ${String(relay.sweeps)} sweeps over all sizes` : ''}):`,
    'the rates are the medians (every run in brackets) and the ratio is of the medians',
    `(load average ${String(relay.loadAtStart)} at the start, ${String(relay.loadAtEnd)} at the end${relay.seconds ? `; ${Math.round(Number(relay.seconds) / 60)} min in all` : ''}).`,
    '',
    '- CPU per message: the relay process (primary and workers), or Postfix master + all its daemons (live and reaped), over the',
    '  load plus 3 s of delivery (median of the runs).',
    '- Memory per in-flight message: growth of the proportional set size (PSS: shared pages split',
    '  between the processes sharing them) with 50 messages held in flight (all of DATA sent but the final',
    '  dot, read by the server), divided by 50: the largest of six samples over 3 s. mailfleet (all its processes) on a relay',
    '  started for it (the relay of the runs holds their garbage), with its V8 heap growth in brackets',
    '  (message bytes are Buffers, outside the heap); Postfix over its process tree, where smtpd processes',
    '  left from the runs are reused (a new one costs about 1.1 MiB) and the message goes to the queue file.',
    '- Accept latency: end of DATA to `250`, a paced load at 80 % of the median rate of that server (20 sessions,',
    '  about 3 s, the rate achieved in brackets). Postfix keeps its default fsync before `250`.',
    '- DKIM rows (no memory or latency figures): both sign with one rsa-sha256 2048-bit key, mailfleet at delivery, Postfix through the',
    '  OpenDKIM milter; since mailfleet signs after its `250`, the rate is end to end (signed and in a',
    "  sink that dumps every message), and Postfix's CPU includes OpenDKIM's.",
    '',
    '| size | postfix msg/s | mailfleet msg/s | ratio | CPU ms/msg postfix / mailfleet | KiB per in-flight msg postfix / mailfleet (heap) | accept p50 / p99 ms at 80 %: postfix | mailfleet |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.workload.replace(', end to end', '')} | ${r.postfix.messagesPerSecond.toFixed(0)} (${r.postfix.rates.map((x) => x.toFixed(0)).join(', ')}) | ${r.mailfleet.messagesPerSecond.toFixed(0)} (${r.mailfleet.rates.map((x) => x.toFixed(0)).join(', ')}) | ${r.ratio.toFixed(2)}x | ${r.postfix.cpuMsPerMessage.toFixed(2)} / ${r.mailfleet.cpuMsPerMessage.toFixed(2)} | ${kib(r.postfix.extra?.inFlightKiB)} / ${kib(r.mailfleet.extra?.inFlightKiB)} (${kib(r.mailfleet.extra?.inFlightHeapKiB)}) | ${latency(r.postfix)} (${r.postfix.extra?.pacedAchieved.toFixed(0) ?? '-'}/s) | ${latency(r.mailfleet)} (${r.mailfleet.extra?.pacedAchieved.toFixed(0) ?? '-'}/s) |`,
    ),
    '',
    '![relay vs Postfix by message size](bench-relay.svg)',
    '',
  );
  const short = rows.map((r) =>
    r.workload.replace('one per connection', 'one/conn.').replace(', end to end', ''),
  );
  const series = (value: (s: SummaryRow['postfix']) => number) =>
    (
      [
        ['mailfleet', '#2563eb'],
        ['postfix', '#9ca3af'],
      ] as const
    ).map(([server, color]) => ({ name: server, color, values: rows.map((r) => value(r[server])) }));
  writeFileSync(
    join(ROOT, 'docs/bench-relay.svg'),
    renderCharts([
      {
        title: 'Throughput ratio to Postfix by size',
        unit: 'x Postfix (same run)',
        categories: short,
        series: [
          { name: 'mailfleet', color: '#2563eb', values: rows.map((r) => r.ratio) },
          { name: 'postfix', color: '#9ca3af', values: rows.map(() => 1) },
        ],
      },
      {
        title: 'Throughput (median)',
        unit: 'messages/s',
        categories: short,
        series: series((s) => s.messagesPerSecond),
      },
      {
        title: 'Accept p99 at 80 % load',
        unit: 'ms',
        categories: short,
        series: series((s) => s.extra?.acceptP99Ms ?? 0),
      },
      { title: 'CPU per message', unit: 'ms', categories: short, series: series((s) => s.cpuMsPerMessage) },
    ]),
  );
}
for (const [name, title] of [
  ['relay-dkim', 'Relay vs Postfix + OpenDKIM (signing), an earlier separate run'],
  ['relay-dkim-100k', 'Relay vs Postfix + OpenDKIM (signing), 100 KB messages, an earlier separate run'],
  ['tracking', 'Link tracking on vs off, 30 KB HTML newsletter (Postfix does not track)'],
  ['scheduler', 'Scheduler cost'],
  ['operator-scale', 'Operator scale'],
  ['pool-rate', 'Pool-wide limits over 3 relays: shared store vs static share vs Postfix'],
  ['feedback', 'Inbound DSN and ARF processing: return-path listener vs Postfix'],
  ['suppression', 'A million suppressed addresses at RCPT time: relay vs Postfix hash: map'],
] as const) {
  const r = load(name);
  if (!r && name.startsWith('relay-dkim')) continue; // now rows of the relay's table
  md.push(`## ${title}`, '');
  if (!r)
    md.push(
      'Not run yet (`node bench/run.ts --only ' + name.replace('relay-', '').replace('-scale', '') + '`).',
      '',
    );
  else
    md.push(
      `\`bench/results/${name}.json\` (${r.ok ? 'ok' : 'FAILED'}, ${r.seconds} s${r.at ? `, run at ${String(r.at)}` : ''}):`,
      '',
      // A blank line around each table, so the lines printed next to it stay paragraphs.
      ...(r.output as string[]).flatMap((line, i, all) => {
        const table = line.startsWith('|');
        const before = table && i > 0 && !all[i - 1]!.startsWith('|') ? [''] : [];
        const after = table && all[i + 1] !== undefined && !all[i + 1]!.startsWith('|') ? [''] : [];
        return [...before, line, ...after];
      }),
      '',
    );
}
// Written by hand, not by a benchmark: kept from the file as it is (code comments point to it).
const FIGURES = '## Figures behind code choices';
const previous = existsSync(join(ROOT, 'docs/benchmarks.md'))
  ? readFileSync(join(ROOT, 'docs/benchmarks.md'), 'utf8')
  : '';
const figuresAt = previous.indexOf(`\n${FIGURES}\n`);
if (figuresAt >= 0) {
  const end = previous.indexOf('\n## ', figuresAt + FIGURES.length + 2);
  md.push(previous.slice(figuresAt + 1, end < 0 ? undefined : end).trimEnd(), '');
}
md.push(
  '## Other runs',
  '',
  '- The operator at 1000 pools, every change that got it there and the runs before it:',
  '  [benchmarks-operator.md](benchmarks-operator.md).',
  '- Relay CPU per message before and after each relay change, older relay vs Postfix runs, and where',
  '  the time goes: `bench/relay-throughput/RESULTS.md`.',
  '- The container image (`npm run image`): size, digest stability, build and start times:',
  '  [benchmarks-image.md](benchmarks-image.md).',
  '- A relay with 10,000-100,000 queued messages killed with SIGKILL: time until it serves again (the',
  "  relay pod's startupProbe window), next to Postfix: `bench/spool-recovery/RESULTS.md`.",
  '',
);
writeFileSync(join(ROOT, 'docs/benchmarks.md'), `${md.join('\n')}\n`);
// Formatted as the repository's prettier check wants it, so a fresh report can be committed as it is.
spawnSync(
  process.execPath,
  [join(ROOT, 'node_modules/prettier/bin/prettier.cjs'), '--write', 'docs/benchmarks.md', 'bench/results'],
  {
    cwd: ROOT,
    stdio: 'ignore',
  },
);
process.stdout.write(
  `\nwrote docs/benchmarks.md, docs/bench-relay.svg, bench/results/*.json (${((Date.now() - started) / 60000).toFixed(1)} min in all)\n`,
);
