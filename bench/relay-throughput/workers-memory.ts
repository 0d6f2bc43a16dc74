// Memory of a relay by worker count (config `workers`, relay/src/workers/): the proportional set
// size (PSS, shared pages split between the processes sharing them, close to what a pod's memory
// cgroup charges) summed over the primary and its workers, idle after start, and the largest of
// the samples taken every 200 ms while smtp-source sends 100 KB and then 1 MB messages (20
// sessions) through it to smtp-sink. Not a test: it asserts nothing.
//
// Usage: scripts/node24.sh node bench/relay-throughput/workers-memory.ts [--workers 1,2] [--messages 400]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { pss } from './load.ts';
import { freePort } from '../../test/helpers/relay/peers.ts';
import { runSmtpSource, waitPort } from '../lib/smtp.ts';
import { benchRelayConfig } from '../lib/relay-config.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: { workers: { type: 'string', default: '1,2' }, messages: { type: 'string', default: '400' } },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 2 ** 20;

/** pid and its children (the primary and its workers). */
function tree(root: number): number[] {
  const out = [root];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === root) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function measure(workers: number, messages: number): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'relay-memory-'));
  const sinkPort = await freePort();
  const smtpPort = await freePort();
  const httpPort = await freePort();
  const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'root', `127.0.0.1:${sinkPort}`, '1000'], {
    stdio: 'ignore',
  });
  writeFileSync(
    join(work, 'relay.yaml'),
    stringify(
      benchRelayConfig({
        smtpPort,
        httpPort,
        sinkPort,
        spoolDir: join(work, 'spool'),
        accountingFile: join(work, 'accounting.jsonl'),
        workers,
      }),
    ),
  );
  const relay = spawn(
    process.execPath,
    [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', join(work, 'relay.yaml')],
    {
      stdio: 'ignore',
    },
  );
  try {
    await waitPort(sinkPort);
    await waitPort(smtpPort);
    await sleep(3000);
    const processes = tree(relay.pid!).length;
    const idle = pss(tree(relay.pid!));
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, pss(tree(relay.pid!)))), 200);
    // smtp-source runs synchronously: the sampler runs between the two loads and after them.
    await sleep(200);
    runSmtpSource(smtpPort, { reuse: true, count: messages, size: 100 * 1024, sessions: 20 });
    await sleep(2000);
    runSmtpSource(smtpPort, {
      reuse: true,
      count: Math.ceil(messages / 10),
      size: 1024 * 1024,
      sessions: 20,
    });
    await sleep(3000);
    clearInterval(sampler);
    return `| ${workers} | ${processes} | ${(idle / MiB).toFixed(0)} | ${(peak / MiB).toFixed(0)} |`;
  } finally {
    relay.kill('SIGTERM');
    sink.kill('SIGTERM');
    await sleep(1000);
    rmSync(work, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const w of values.workers.split(',').map(Number)) rows.push(await measure(w, Number(values.messages)));
process.stdout.write(
  [
    `relay memory by worker count: PSS of all its processes, MiB; load ${Number(values.messages)} x 100 KB then ${Math.ceil(Number(values.messages) / 10)} x 1 MB, 20 sessions (load average ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`,
    '| workers | processes | PSS idle | PSS peak under load |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
);
