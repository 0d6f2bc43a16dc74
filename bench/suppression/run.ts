// Suppression list benchmark: what a list of a million suppressed addresses costs at RCPT time.
// In process: journal load time, memory per entry, lookup time (hits and misses) of the list the
// relay uses. End to end: acceptance rate (smtp-source, 20 sessions, reused connections, 2 KB, a
// recipient that is not suppressed) of the relay with an empty list and with the million entries,
// next to Postfix without and with `check_recipient_access hash:` holding the same million
// addresses (postmap). Each server is loaded in alternation, twice; the best run of each is shown.
// Not a test: it asserts nothing, except that each server does refuse a suppressed recipient.
//
// Usage: scripts/node24.sh node --expose-gc bench/suppression/run.ts [messages] [--entries N] [--json F]   (root: Postfix)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort, sendMessage } from '../../test/helpers/relay/peers.ts';
import { encodeChange } from '../../relay/src/suppression/entry.ts';
import { SuppressionList } from '../../relay/src/suppression/list.ts';
import { runSmtpSource, startPostfix, waitPort } from '../lib/smtp.ts';
import { benchRelayConfig } from '../lib/relay-config.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { entries: { type: 'string', default: '1000000' }, json: { type: 'string' } },
});
const ENTRIES = Number(values.entries);
const MESSAGES = Number(positionals[0] ?? 5000);
const SESSIONS = 20;
const address = (i: number) => `user${i}.${(i * 2654435761) % 1e9}@example.net`;

async function writeLines(path: string, line: (i: number) => string): Promise<void> {
  const out = createWriteStream(path);
  let chunk: string[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    chunk.push(line(i));
    if (chunk.length === 10_000) {
      if (!out.write(chunk.join(''))) await new Promise<void>((r) => out.once('drain', () => r()));
      chunk = [];
    }
  }
  out.end(chunk.join(''));
  await new Promise<void>((r) => out.once('finish', () => r()));
}

const gc = () => (globalThis as { gc?: () => void }).gc?.();

async function inProcess(journal: string) {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage().rss;
  const list = new SuppressionList({ file: journal, now: Date.now });
  const t0 = performance.now();
  await list.open();
  const loadMs = performance.now() - t0;
  gc();
  const heapBytesPerEntry = (process.memoryUsage().heapUsed - heapBefore) / list.size;
  const rssBytesPerEntry = (process.memoryUsage().rss - rssBefore) / list.size;
  const probes = 1_000_000;
  const hits = Array.from({ length: 1000 }, (_, i) => address((i * 7919) % ENTRIES));
  const misses = Array.from({ length: 1000 }, (_, i) => `nobody${i}@example.org`);
  const time = (recipients: string[]) => {
    let found = 0;
    const t = process.hrtime.bigint();
    for (let i = 0; i < probes; i++) if (list.check('app@example.com', recipients[i % 1000]!)) found++;
    return { nsPerLookup: Number(process.hrtime.bigint() - t) / probes, found };
  };
  const hit = time(hits);
  const miss = time(misses);
  await list.close();
  return { entries: list.size, loadMs, heapBytesPerEntry, rssBytesPerEntry, hit, miss };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'suppression-bench-'));
  chmodSync(work, 0o755);
  const processes: ChildProcess[] = [];
  process.once('exit', () => {
    for (const p of processes) p.kill('SIGTERM');
  });
  const now = Date.now();
  const journal = join(work, 'suppression.jsonl');
  await writeLines(
    journal,
    (i) =>
      `${encodeChange({ op: 'add', entry: { address: address(i), scope: '*', reason: 'hard-bounce', source: 'smtp', messageId: `Q${i.toString(36)}`, addedAt: now, expiresAt: 0 } })}\n`,
  );
  const local = await inProcess(journal);
  process.stderr.write(`in process: ${JSON.stringify(local)}\n`);

  const postmapSource = join(work, 'suppressed');
  await writeLines(postmapSource, (i) => `${address(i)} REJECT 5.1.1 Recipient suppressed\n`);
  const t = performance.now();
  // postmap reads a main.cf: a private, minimal one (a fresh machine has none in /etc/postfix).
  mkdirSync(join(work, 'postmap'));
  writeFileSync(join(work, 'postmap/main.cf'), 'compatibility_level = 3.6\n');
  const postmap = spawnSync('postmap', ['-c', join(work, 'postmap'), `hash:${postmapSource}`]);
  if (postmap.status !== 0) throw new Error(`postmap: ${postmap.stderr}`);
  const postmapMs = performance.now() - t;

  const sinkPort = await freePort();
  const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'root', `127.0.0.1:${sinkPort}`, '1000'], {
    stdio: 'ignore',
  });
  processes.push(sink);
  await waitPort(sinkPort);

  const servers: { name: string; port: number; stop: () => void }[] = [];
  for (const [name, withList] of [
    ['mailfleet, empty list', false],
    [`mailfleet, ${ENTRIES} suppressed`, true],
  ] as const) {
    const dir = join(work, withList ? 'relay-list' : 'relay-empty');
    mkdirSync(join(dir, 'spool'), { recursive: true });
    if (withList) spawnSync('cp', [journal, join(dir, 'spool/suppression.jsonl')]);
    const port = await freePort();
    writeFileSync(
      join(dir, 'relay.yaml'),
      stringify(
        benchRelayConfig({
          smtpPort: port,
          httpPort: await freePort(),
          sinkPort,
          spoolDir: join(dir, 'spool'),
        }),
      ),
    );
    const relay = spawn(
      process.execPath,
      [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', join(dir, 'relay.yaml')],
      {
        stdio: 'ignore',
      },
    );
    processes.push(relay);
    servers.push({ name, port, stop: () => relay.kill('SIGTERM') });
  }
  for (const [name, withMap] of [
    ['postfix, no map', false],
    [`postfix, ${ENTRIES} in hash: map`, true],
  ] as const) {
    const dir = join(work, withMap ? 'postfix-map' : 'postfix-plain');
    const port = await freePort();
    startPostfix(dir, port, sinkPort, {
      extraMain: withMap
        ? [`smtpd_recipient_restrictions = check_recipient_access hash:${postmapSource}`]
        : [],
    });
    servers.push({ name, port, stop: () => spawnSync('postfix', ['-c', join(dir, 'conf'), 'stop']) });
  }
  const rows: { server: string; messagesPerSecond: number; runs: number[]; refusesSuppressed: boolean }[] =
    [];
  try {
    for (const s of servers) await waitPort(s.port);
    const runs = new Map<string, number[]>();
    for (const s of servers)
      runSmtpSource(s.port, { reuse: true, count: 500, size: 2048, sessions: SESSIONS });
    for (let round = 0; round < 2; round++)
      for (const s of round === 0 ? servers : [...servers].reverse()) {
        const rate = runSmtpSource(s.port, { reuse: true, count: MESSAGES, size: 2048, sessions: SESSIONS });
        runs.set(s.name, [...(runs.get(s.name) ?? []), rate]);
        process.stderr.write(`${s.name}: ${rate.toFixed(0)} msg/s\n`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    for (const s of servers) {
      const probe = await sendMessage(s.port, {
        from: 'bench@example.com',
        to: [address(ENTRIES - 1)],
        raw: 'Subject: probe\r\n\r\nprobe\r\n',
      });
      rows.push({
        server: s.name,
        messagesPerSecond: Math.round(Math.max(0, ...(runs.get(s.name) ?? []))),
        runs: (runs.get(s.name) ?? []).map(Math.round),
        refusesSuppressed: !probe.ok && /^5\d\d/.test(probe.response),
      });
    }
  } finally {
    for (const s of servers) s.stop();
    sink.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
    rmSync(work, { recursive: true, force: true });
  }
  const table = [
    '',
    `Suppression list: ${ENTRIES} entries. In process (the relay's list): journal load ${(local.loadMs / 1000).toFixed(1)} s, ` +
      `${local.rssBytesPerEntry.toFixed(0)} bytes of RSS per entry (of which ${Math.max(0, local.heapBytesPerEntry).toFixed(0)} on the JavaScript heap), ` +
      `lookup ${local.hit.nsPerLookup.toFixed(0)} ns (suppressed) / ${local.miss.nsPerLookup.toFixed(0)} ns (not suppressed). ` +
      `postmap of the same addresses: ${(postmapMs / 1000).toFixed(1)} s.`,
    `End to end: ${MESSAGES} messages of 2 KB, ${SESSIONS} sessions, smtp-source -d, a recipient not on the list; best of 2 alternating runs.`,
    '| server | accepted/s, best (each run) | refuses a suppressed recipient |',
    '|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.server} | ${r.messagesPerSecond} (${r.runs.join(', ')}) | ${r.refusesSuppressed ? 'yes' : 'NO'} |`,
    ),
    '',
  ].join('\n');
  process.stdout.write(table);
  if (values.json)
    writeFileSync(
      values.json,
      JSON.stringify({ entries: ENTRIES, messages: MESSAGES, local, postmapMs, rows, table }, null, 2),
    );
}

await main();
process.exit(0);
