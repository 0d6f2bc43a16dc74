// Relay throughput benchmark: mailfleet relay and Postfix on the same machine in the same run,
// both relaying to one smtp-sink, loaded with smtp-source (2 KB messages, 20 sessions), with
// reused connections (-d) and one message per connection. Prints messages/s (acceptance rate),
// accept latency p50/p99 (a separate 20-session Node client timing end-of-DATA -> 250) and the
// relay's peak RSS. Not a test: it asserts nothing.
//
// DKIM workload (--dkim): both servers sign with the same rsa-sha256 2048-bit key, mailfleet at
// delivery, Postfix through the Debian OpenDKIM milter (private config and inet socket in the
// temp dir, smtpd_milters in the private Postfix config). Since mailfleet signs after the 250,
// the figure that counts is end to end: messages signed and delivered into the sink per second
// (the sink dumps every message, and a sample from each server is checked for a signature).
//
// Usage: scripts/node24.sh node bench/relay-throughput/run.ts [messages] [--dkim] [--size B] [--json F]  (root)
// Workloads: 2 KB reused connections, 2 KB one per connection, and the size axis with reused
// connections: 10 KB (messages/2), 100 KB (messages/5), 1 MB (messages/25); the
// server that goes first alternates per workload. CPU per message: relay process, or Postfix master
// + daemons (live and reaped), over the load and 3 s of delivery after it. --json writes results.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readdirSync } from 'node:fs';
import { stringify } from 'yaml';
import { generateDkimKey } from '../../relay/src/dkim/keys.ts';
// A port the kernel just handed out: a random one in a range could still be held by the last run.
import { freePort } from '../../test/helpers/relay/peers.ts';
import { runSmtpSource, startPostfix as startPostfixAt, waitPort } from '../lib/smtp.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MESSAGES = Number(
  process.argv.slice(2).find((a, i, args) => /^\d+$/.test(a) && args[i - 1] !== '--size') ?? 5000,
);
const DKIM = process.argv.includes('--dkim');
const SESSIONS = 20;
const sizeAt = process.argv.indexOf('--size');
/** Message size of the 2 KB workloads and of --dkim (`--size 102400` signs 100 KB messages). */
const SIZE = sizeAt > 0 ? Number(process.argv[sizeAt + 1]) : 2048;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function smtpSource(port: number, reuse: boolean, count: number, size = SIZE): number {
  return runSmtpSource(port, { reuse, count, size, sessions: SESSIONS });
}

/** Accept latency: SESSIONS raw SMTP sessions, each timing "." -> 250 for `count` messages total. */
async function acceptLatency(
  port: number,
  reuse: boolean,
  count: number,
  size = SIZE,
): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  const line = `${'x'.repeat(76)}\r\n`;
  const body = `Subject: latency\r\n\r\n${line.repeat(Math.ceil((size - 24) / line.length))}.\r\n`;
  let left = count;
  const session = async () => {
    while (left > 0) {
      const socket = createConnection(port, '127.0.0.1');
      let buffer = '';
      const waiters: ((line: string) => void)[] = [];
      socket.on('data', (d) => {
        buffer += d.toString();
        let i;
        while ((i = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          if (line[3] === ' ') waiters.shift()?.(line);
        }
      });
      const reply = () => new Promise<string>((r) => waiters.push(r));
      const cmd = async (c: string) => {
        socket.write(`${c}\r\n`);
        return reply();
      };
      await reply();
      await cmd('EHLO bench.localhost');
      do {
        left--;
        await cmd('MAIL FROM:<bench@example.com>');
        await cmd('RCPT TO:<rcpt@example.org>');
        await cmd('DATA');
        const t = process.hrtime.bigint();
        socket.write(body);
        const r = await reply();
        if (!r.startsWith('250')) throw new Error(r);
        samples.push(Number(process.hrtime.bigint() - t) / 1e6);
      } while (reuse && left > 0);
      await cmd('QUIT');
      socket.destroy();
    }
  };
  await Promise.all(Array.from({ length: SESSIONS }, session));
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
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
  const config = {
    hostname: 'relay.bench.localhost',
    listeners: { smtp: { enabled: true, host: '127.0.0.1', port: relayPort } },
    allowedNetworks: ['127.0.0.0/8'],
    trustedNetworks: ['127.0.0.0/8'],
    sendingDomains: [
      DKIM
        ? {
            domain: 'example.com',
            dkim: { selector: 's2048', algorithm: 'rsa-sha256', keyFile: join(work, 'dkim.pem') },
          }
        : { domain: 'example.com' },
    ],
    delivery: {
      mode: 'smarthost',
      smarthost: { host: '127.0.0.1', port: sinkPort, tls: 'starttls-opportunistic' },
      maxConnectionsPerDestination: 20,
    },
    limits: { maxConnectionsPerClient: 1000 },
    spool: { dir: join(work, 'spool'), minFreeBytes: 0 },
    accounting: { file: join(work, 'accounting.jsonl') },
    http: { host: '127.0.0.1', port: await freePort() },
  };
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
      { label: 'reused connections (-d)', reuse: true, size: SIZE, count: MESSAGES },
      { label: 'one message per connection', reuse: false, size: SIZE, count: MESSAGES },
      // The size axis: real transactional and newsletter mail is 10-100 KB, some of it 1 MB.
      { label: '10 KB messages, reused', reuse: true, size: 10 * 1024, count: Math.ceil(MESSAGES / 2) },
      { label: '100 KB messages, reused', reuse: true, size: 100 * 1024, count: Math.ceil(MESSAGES / 5) },
      { label: '1 MB messages, reused', reuse: true, size: 1024 * 1024, count: Math.ceil(MESSAGES / 25) },
    ];
    for (const [w, workload] of workloads.entries()) {
      // Alternate which server goes first from one workload to the next.
      const servers = [
        ['postfix', postfixPort],
        ['mailfleet', relayPort],
      ] as const;
      for (const [name, port] of w % 2 === 0 ? servers : [...servers].reverse()) {
        const { reuse, size, count } = workload;
        smtpSource(port, reuse, Math.min(500, count), size); // warm-up
        await sleep(1000);
        const pids = () => (name === 'mailfleet' ? [relay.pid!] : processTree(masterPid()));
        const cpuBefore = cpuSeconds(pids(), name === 'postfix' ? masterPid() : undefined);
        const rate = smtpSource(port, reuse, count, size);
        await sleep(3000); // let deliveries to the sink finish: they count in CPU per message
        const cpu = cpuSeconds(pids(), name === 'postfix' ? masterPid() : undefined) - cpuBefore;
        const rss = name === 'mailfleet' ? peakRss(relay.pid!) : totalRss(processTree(masterPid()));
        const latency = await acceptLatency(port, reuse, Math.min(count, 2000), size);
        const result = {
          workload: workload.label,
          server: name,
          messages: count,
          size,
          messagesPerSecond: rate,
          acceptP50Ms: latency.p50,
          acceptP99Ms: latency.p99,
          rssMiB: rss,
          cpuMsPerMessage: (cpu * 1000) / count,
        };
        results.push(result);
        rows.push(
          `| ${workload.label} | ${name} | ${rate.toFixed(0)} | ${latency.p50.toFixed(1)} | ${latency.p99.toFixed(1)} | ${rss.toFixed(0)} MiB | ${result.cpuMsPerMessage.toFixed(2)} |`,
        );
        process.stdout.write(`${rows.at(-1)}\n`);
        await sleep(2000); // let deliveries to the sink settle between runs
      }
    }
  } finally {
    spawnSync('postfix', ['-c', join(postfixDir, 'conf'), 'stop'], { stdio: 'ignore' });
    for (const p of processes) p.kill('SIGTERM');
    await sleep(500);
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(
    [
      '',
      `${MESSAGES} messages of ${SIZE} bytes (10 KB: ${Math.ceil(MESSAGES / 2)}, 100 KB: ${Math.ceil(MESSAGES / 5)}, 1 MB: ${Math.ceil(MESSAGES / 25)}), ${SESSIONS} sessions, smtp-source; latency from up to 2000 messages; load average ${loadAtStart} at the start`,
      '| mode | server | messages/s | accept p50 ms | accept p99 ms | RSS (mailfleet peak; postfix sum) | CPU ms/message |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      'Throughput ratio mailfleet / Postfix per workload:',
      ...ratios(),
      '',
    ].join('\n'),
  );
}

function ratios(): string[] {
  const rate = (workload: unknown, server: string) =>
    Number(results.find((r) => r.workload === workload && r.server === server)?.messagesPerSecond ?? 0);
  return [...new Set(results.map((r) => r.workload))].map(
    (w) => `${String(w)}: ${(rate(w, 'mailfleet') / rate(w, 'postfix')).toFixed(2)}x`,
  );
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

const results: Record<string, unknown>[] = [];
await main();
const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0 && process.argv[jsonAt + 1]) {
  writeFileSync(
    process.argv[jsonAt + 1]!,
    `${JSON.stringify({ bench: DKIM ? 'relay-dkim' : 'relay-throughput', sessions: SESSIONS, results }, null, 2)}\n`,
  );
}
