// Tracking benchmark: relay throughput with link tracking on and off for a 30 KB HTML newsletter
// (multipart/alternative, QP HTML with ~60 links), in the same run, to Postfix's smtp-sink. Each
// mode runs twice, alternating (off, on, on, off), with a fresh relay and spool. Figures per run:
// end-to-end messages/s (first submission to the last delivery counted by the relay's
// mailfleet_relay_delivered_total) and the relay process's CPU ms per message (/proc utime+stime).
// Not a test: it asserts nothing. Postfix does no tracking; its figures for relaying messages of
// this size are in docs/benchmarks.md (relay-throughput bench, 10 KB and 100 KB).
//
// Usage: scripts/node24.sh node bench/tracking/run.ts [messages=1000] [--json F]
import { readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import {
  relayConfig,
  removeDir,
  startRelay,
  startSink,
  tempDir,
  waitFor,
} from '../../test/helpers/relay/peers.ts';
import { newsletterOfSize } from '../../test/helpers/tracking/newsletters.ts';

const MESSAGES = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1000);
const jsonAt = process.argv.indexOf('--json');
const CONNECTIONS = 10;
const TEMPLATE = newsletterOfSize(30_000).toString('latin1');

function cpuMs(pid: number): number {
  // /proc/<pid>/stat fields 14 and 15: utime and stime in clock ticks (USER_HZ = 100 on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function runOnce(tracking: boolean, round: number) {
  const sink = await startSink();
  const dir = await tempDir('bench-tracking');
  await writeFile(join(dir, 'tracking.key'), 'bench-tracking-key-0123456789abcdef\n');
  const relay = await startRelay(
    relayConfig(join(dir, 'spool'), sink.port, {
      sendingDomains: [
        tracking
          ? { domain: 'shop.example', tracking: { opens: true, clicks: true, host: 't.shop.example' } }
          : { domain: 'shop.example' },
      ],
      ...(tracking ? { tracking: { keyFile: join(dir, 'tracking.key') } } : {}),
      delivery: {
        mode: 'smarthost',
        ehloName: 'relay.test',
        smarthost: { host: '127.0.0.1', port: sink.port, tls: 'starttls-opportunistic' },
        maxConnectionsPerDestination: 20,
      },
    }),
  );
  const transport = createTransport({
    host: '127.0.0.1',
    port: relay.ports.smtp,
    pool: true,
    maxConnections: CONNECTIONS,
    maxMessages: Infinity,
    ignoreTLS: true,
  });
  const cpu0 = cpuMs(relay.proc.pid!);
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < MESSAGES) {
        const id = `r${round}-${next++}`;
        await transport.sendMail({
          envelope: { from: 'bounce@shop.example', to: ['reader@example.org'] },
          raw: TEMPLATE.replace('<bench@shop.example>', `<${id}@shop.example>`),
        });
      }
    }),
  );
  const accepted = Number(process.hrtime.bigint() - started) / 1e9;
  await waitFor(
    async () => (await relay.metric('mailfleet_relay_recipients_delivered_total')) >= MESSAGES,
    600_000,
    'deliveries',
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuMs(relay.proc.pid!) - cpu0;
  const rewritten = await relay.metric('mailfleet_relay_tracking_messages_total', { result: 'rewritten' });
  transport.close();
  await relay.stop();
  await sink.stop();
  await removeDir(dir);
  await removeDir(sink.dir);
  return {
    tracking,
    round,
    messages: MESSAGES,
    acceptedPerSecond: MESSAGES / accepted,
    deliveredPerSecond: MESSAGES / seconds,
    cpuMsPerMessage: cpu / MESSAGES,
    rewritten,
  };
}

const rows: Awaited<ReturnType<typeof runOnce>>[] = [];
for (const [round, tracking] of [false, true, true, false].entries())
  rows.push(await runOnce(tracking, round));
const mean = (on: boolean, key: 'deliveredPerSecond' | 'cpuMsPerMessage' | 'acceptedPerSecond') => {
  const r = rows.filter((x) => x.tracking === on);
  return r.reduce((s, x) => s + x[key], 0) / r.length;
};
const size = Buffer.byteLength(TEMPLATE, 'latin1');
console.log(
  `tracking benchmark: ${MESSAGES} messages of ${size} bytes (${(TEMPLATE.match(/href=3D/g) ?? []).length} links), ${CONNECTIONS} connections, smtp-sink upstream`,
);
console.log('| round | tracking | accepted msg/s | delivered msg/s | relay CPU ms/msg | rewritten |');
console.log('| ----- | -------- | -------------- | --------------- | ---------------- | --------- |');
for (const r of rows)
  console.log(
    `| ${r.round} | ${r.tracking ? 'on' : 'off'} | ${r.acceptedPerSecond.toFixed(0)} | ${r.deliveredPerSecond.toFixed(0)} | ${r.cpuMsPerMessage.toFixed(2)} | ${r.rewritten} |`,
  );
console.log(
  `mean: off ${mean(false, 'deliveredPerSecond').toFixed(0)} msg/s, ${mean(false, 'cpuMsPerMessage').toFixed(2)} CPU ms/msg; on ${mean(true, 'deliveredPerSecond').toFixed(0)} msg/s, ${mean(true, 'cpuMsPerMessage').toFixed(2)} CPU ms/msg; throughput on/off ${(mean(true, 'deliveredPerSecond') / mean(false, 'deliveredPerSecond')).toFixed(2)}`,
);
if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ size, rows }, null, 2));
