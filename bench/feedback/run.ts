// Inbound DSN processing rate: how fast the return-path listener takes reports, next to Postfix
// taking the same messages (queued, then discarded). Both answer 250 only after they hold the
// report (mailfleet: parsed, counted, logged; Postfix: queued), so the figures compare one step
// each MTA must do per bounce. Also the in-process cost of reading one report (postal-mime MIME
// parsing plus our DSN/ARF parsers), per kind of report.
//
// Usage: node bench/feedback/run.ts [--reports 2000] [--connections 4]
import { chmodSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createTransport } from 'nodemailer';
import { readReport } from '../../relay/src/feedback/report.ts';
import { feedbackOf } from '../../relay/src/feedback/outcome.ts';
import { verpAddress } from '../../relay/src/return-path/verp.ts';
import {
  freePort,
  relayConfig,
  removeDir,
  startRelay,
  tempDir,
  waitFor,
} from '../../test/helpers/relay/peers.ts';
import { startPostfix } from '../../test/helpers/relay/postfix.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const CORPUS = join(ROOT, 'test/fixtures/feedback');
const { values } = parseArgs({
  options: { reports: { type: 'string', default: '2000' }, connections: { type: 'string', default: '4' } },
});
const REPORTS = Number(values.reports);
const CONNECTIONS = Number(values.connections);
const KEY = 'bench-verp-key-0123456789abcdef';

const samples: [string, string][] = [
  ['RFC 3464 DSN (Postfix 3.7)', 'postfix-3.7-user-unknown.eml'],
  ['non-standard bounce (Exim)', 'sisimai/lhost-exim-02.eml'],
  ['ARF complaint (Yahoo)', 'sisimai/arf-02.eml'],
];

async function inProcess(): Promise<void> {
  console.log(
    `In process: reading one report (postal-mime MIME parsing plus the DSN/ARF parsers), ${REPORTS * 2} times per kind:`,
  );
  console.log('| report | bytes | reports/s (one core) | µs/report |');
  console.log('| --- | --- | --- | --- |');
  const token = { sendingDomain: 'example.com', queueId: 'Q1', recipient: 'nobody@example.org' };
  for (const [name, file] of samples) {
    const raw = readFileSync(join(CORPUS, file));
    for (let i = 0; i < 200; i++) feedbackOf(token, await readReport(raw)); // warm-up
    const n = REPORTS * 2;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) feedbackOf(token, await readReport(raw));
    const us = Number(process.hrtime.bigint() - started) / 1000 / n;
    console.log(`| ${name} | ${raw.length} | ${Math.round(1e6 / us)} | ${us.toFixed(1)} |`);
  }
}

/** Sends `REPORTS` copies of the Postfix DSN over `CONNECTIONS` pooled connections; reports/s. */
async function blast(port: number, to: (i: number) => string): Promise<number> {
  const raw = readFileSync(join(CORPUS, 'postfix-3.7-user-unknown.eml'));
  const transport = createTransport({
    host: '127.0.0.1',
    port,
    pool: true,
    maxConnections: CONNECTIONS,
    maxMessages: Infinity,
    ignoreTLS: true,
  });
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < REPORTS) {
        const i = next++;
        await transport.sendMail({ envelope: { from: '', to: [to(i)] }, raw });
      }
    }),
  );
  transport.close();
  return REPORTS / ((Date.now() - started) / 1000);
}

async function overSmtp(): Promise<void> {
  const dir = await tempDir('feedback-bench');
  chmodSync(dir, 0o755); // Postfix's unprivileged daemons must traverse it
  await writeFile(join(dir, 'verp.key'), KEY);
  const relay = await startRelay(
    relayConfig(join(dir, 'spool'), 9, {
      sendingDomains: [{ domain: 'example.com', returnPath: 'bounces.example.com' }],
      returnPath: { keyFile: join(dir, 'verp.key'), listener: { host: '127.0.0.1', port: 0 } },
      accounting: { file: join(dir, 'spool', 'accounting.jsonl') },
    }),
  );
  const postfixPort = await freePort();
  const postfix = startPostfix({
    dir: join(dir, 'postfix'),
    port: postfixPort,
    relayhost: '[127.0.0.1]:9',
    transports: { 'bounces.example.com': 'discard:' },
  });
  try {
    const verp = (i: number) =>
      verpAddress(Buffer.from(KEY), 'bounces.example.com', {
        sendingDomain: 'example.com',
        queueId: `Q${i}`,
        recipient: `user${i}@example.org`,
      })!;
    await waitFor(
      async () => {
        try {
          const t = createTransport({ host: '127.0.0.1', port: postfixPort, ignoreTLS: true });
          await t.verify();
          t.close();
          return true;
        } catch {
          return false;
        }
      },
      20000,
      'postfix',
    );
    const ours = await blast(relay.ports.returnPath!, verp);
    const counted = await relay.metric('mailfleet_relay_feedback_reports_total', { kind: 'hard-bounce' });
    if (counted !== REPORTS) throw new Error(`counted ${counted} of ${REPORTS}`);
    const theirs = await blast(postfixPort, verp);
    console.log(
      `\nOver SMTP: ${REPORTS} copies of the Postfix DSN, ${CONNECTIONS} pooled connections, to a valid VERP address each; mailfleet first, then Postfix:`,
    );
    console.log(`| ${REPORTS} DSNs over ${CONNECTIONS} connections | reports/s |`);
    console.log('| --- | --- |');
    console.log(
      `| mailfleet return-path listener (parsed, counted, logged before 250) | ${Math.round(ours)} |`,
    );
    console.log(`| Postfix 3.7 smtpd (queued before 250, then discarded) | ${Math.round(theirs)} |`);
  } finally {
    postfix.stop();
    await relay.stop();
    await removeDir(dir);
  }
}

await inProcess();
await overSmtp();
