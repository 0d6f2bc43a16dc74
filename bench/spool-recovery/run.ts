// Spool recovery benchmark: how long a relay with a deep queue takes to serve again after kill -9,
// the window the relay pod's startupProbe must allow (/healthz answers only once the spool is
// recovered), next to Postfix restarted after kill -9 with the same deferred queue.
//
// Per depth: N messages of --size bytes loaded with smtp-source (20 sessions, reused connections)
// into a server whose next hop refuses connections, so every message is deferred and stays queued
// (mailfleet: first retry after an hour, so none is attempted twice meanwhile); once all N are
// deferred, kill -9 of the server (Postfix: its master and every child), then a start on the same
// spool, timed to:
//   mailfleet  /healthz 200 (what the startupProbe polls; "relay started" is logged just before),
//              with the "spool recovered" count checked against N and the peak RSS of the start;
//   Postfix    the 220 greeting of its smtpd (`postfix start` runs its checks, then the master;
//              its queue manager reads the deferred queue afterwards, while mail is accepted).
// Warm page cache (the spool was just written): a node that rebooted reads the spool from disk.
//
// Usage (root, for Postfix): scripts/node24.sh node bench/spool-recovery/run.ts
//          [--depths 10000,50000,100000] [--size 10240] [--no-postfix]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../../test/helpers/relay/peers.ts';
import { runSmtpSource, startPostfix, waitPort } from '../lib/smtp.ts';
import { benchRelayConfig } from '../lib/relay-config.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    depths: { type: 'string', default: '10000,50000,100000' },
    size: { type: 'string', default: '10240' },
    'no-postfix': { type: 'boolean', default: false },
  },
});
const DEPTHS = values.depths.split(',').map(Number);
const SIZE = Number(values.size);
const SESSIONS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function duBytes(dir: string): number {
  const r = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function deferredJobs(httpPort: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${httpPort}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
  let total = 0;
  for (const m of text.matchAll(/^mailfleet_relay_queue_jobs\{([^}]*)\} (\d+)$/gm))
    if ((m[1] ?? '').includes('state="deferred"')) total += Number(m[2]);
  return total;
}

interface Row {
  server: string;
  depth: number;
  spoolMiB: number;
  loadSeconds: number;
  readySeconds: number;
  recovered?: number;
  peakRssMiB?: number;
}

async function mailfleet(depth: number): Promise<Row> {
  const work = mkdtempSync(join(tmpdir(), 'spool-recovery-'));
  const smtpPort = await freePort();
  const httpPort = await freePort();
  const config = benchRelayConfig({
    smtpPort,
    httpPort,
    // Nothing listens there: every attempt is refused and the message deferred.
    sinkPort: await freePort(),
    spoolDir: join(work, 'spool'),
    accountingFile: join(work, 'accounting.jsonl'),
    extra: { retry: { firstRetry: '1h', maxBackoff: '1h', maxQueueLifetime: '5d' } },
  });
  writeFileSync(join(work, 'relay.yaml'), stringify(config));
  const start = (): { proc: ChildProcess; logs: string[] } => {
    const proc = spawn(
      process.execPath,
      [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', join(work, 'relay.yaml')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const logs: string[] = [];
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => logs.push(...chunk.split('\n')));
    return { proc, logs };
  };
  let relay = start();
  try {
    await waitPort(smtpPort);
    const loadStarted = process.hrtime.bigint();
    runSmtpSource(smtpPort, { reuse: true, count: depth, size: SIZE, sessions: SESSIONS });
    await until(`${depth} deferred`, async () => (await deferredJobs(httpPort)) >= depth, 600_000);
    const loadSeconds = seconds(loadStarted);
    relay.proc.kill('SIGKILL');
    await new Promise((r) => relay.proc.once('exit', r));
    const spoolMiB = duBytes(join(work, 'spool')) / 2 ** 20;

    relay = start();
    const started = process.hrtime.bigint();
    await until(
      'the restarted relay to answer /healthz',
      async () => {
        if (relay.proc.exitCode !== null) throw new Error(`relay exited: ${relay.logs.join('\n')}`);
        return (
          (await fetch(`http://127.0.0.1:${httpPort}/healthz`)
            .then((r) => r.status)
            .catch(() => 0)) === 200
        );
      },
      1_800_000,
    );
    const readySeconds = seconds(started);
    const recovered = Number(
      relay.logs.map((l) => /"spool recovered".*"messages":(\d+)/.exec(l)?.[1]).find(Boolean) ?? -1,
    );
    return {
      server: 'mailfleet',
      depth,
      spoolMiB,
      loadSeconds,
      readySeconds,
      recovered,
      peakRssMiB: peakRssMiB(relay.proc.pid ?? 0),
    };
  } finally {
    relay.proc.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
}

/** Messages in Postfix's deferred queue (one file each). */
function postfixDeferred(dir: string): number {
  const deferred = join(dir, 'queue/deferred');
  let count = 0;
  for (const sub of readdirSync(deferred)) count += readdirSync(join(deferred, sub)).length;
  return count;
}

/** Postfix's master and its children, by pid (only the processes of this instance). */
function postfixPids(dir: string): number[] {
  const master = Number(readFileSync(join(dir, 'queue/pid/master.pid'), 'utf8').trim());
  const children = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        // Field 4 of /proc/<pid>/stat is the parent pid (after the command in parentheses).
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === master;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [master, ...children];
}

async function greeting(port: number): Promise<boolean> {
  const { createConnection } = await import('node:net');
  return new Promise((resolveGreeting) => {
    const s = createConnection(port, '127.0.0.1');
    s.setTimeout(2000, () => (s.destroy(), resolveGreeting(false)));
    s.once('data', (chunk) => (s.destroy(), resolveGreeting(chunk.toString().startsWith('220'))));
    s.once('error', () => resolveGreeting(false));
  });
}

async function postfix(depth: number): Promise<Row> {
  const work = mkdtempSync(join(tmpdir(), 'spool-recovery-postfix-'));
  chmodSync(work, 0o755); // postfix's unprivileged daemons must traverse it
  const port = await freePort();
  const conf = join(work, 'conf');
  // The relayhost refuses connections, and the queue manager retries no sooner than in an hour.
  startPostfix(work, port, await freePort(), {
    extraMain: ['minimal_backoff_time = 3600s', 'maximal_backoff_time = 3600s', 'queue_run_delay = 3600s'],
  });
  try {
    await waitPort(port);
    const loadStarted = process.hrtime.bigint();
    runSmtpSource(port, { reuse: true, count: depth, size: SIZE, sessions: SESSIONS });
    await until(`${depth} deferred in Postfix`, () => postfixDeferred(work) >= depth, 900_000);
    const loadSeconds = seconds(loadStarted);
    for (const pid of postfixPids(work)) process.kill(pid, 'SIGKILL');
    await sleep(500);
    const spoolMiB = duBytes(join(work, 'queue')) / 2 ** 20;
    const started = process.hrtime.bigint();
    const r = spawnSync('postfix', ['-c', conf, 'start']);
    if (r.status !== 0) throw new Error(`postfix start: ${r.stderr}`);
    await until('Postfix to greet', () => greeting(port), 600_000);
    return { server: 'postfix', depth, spoolMiB, loadSeconds, readySeconds: seconds(started) };
  } finally {
    spawnSync('postfix', ['-c', conf, 'abort'], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
process.stdout.write(
  `# ${DEPTHS.join('/')} messages of ${SIZE} bytes, Node ${process.version}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}\n`,
);
process.stdout.write(
  '| server | queued | spool MiB | load + defer s | kill -9 -> serving s | recovered | peak RSS MiB |\n| --- | --: | --: | --: | --: | --: | --: |\n',
);
for (const depth of DEPTHS)
  for (const run of values['no-postfix'] ? [mailfleet] : [mailfleet, postfix]) {
    const row = await run(depth);
    rows.push(row);
    process.stdout.write(
      `| ${row.server} | ${row.depth} | ${row.spoolMiB.toFixed(0)} | ${row.loadSeconds.toFixed(1)} | ${row.readySeconds.toFixed(2)} | ${row.recovered ?? '-'} | ${row.peakRssMiB?.toFixed(0) ?? '-'} |\n`,
    );
  }
