// Crash durability: under continuous load, SIGKILL the relay at chosen points (mid-DATA, right
// after a 250, mid-delivery, right after the upstream's 250, during a config reload, at a random
// moment), restart it on the same spool, repeat. Then:
//   - every message that got 250 is delivered;
//   - none that was refused, or whose DATA was cut before its final ".", is delivered;
//   - a message whose "." was sent but whose reply never came (the relay died between fsync and
//     250) may be delivered: counted, not an error (the client must retry; RFC 5321 §6.1);
//   - a duplicate is allowed only for a message the upstream had accepted while it was still in
//     the spool at a kill (delivery in flight; RFC 1047), and each one is counted.
// Short mode: 6 rounds; MAILFLEET_LONG=1: 30 rounds.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  relayConfig,
  removeDir,
  startRelay,
  tempDir,
  waitFor,
  writeConfig,
  type RelayProcess,
} from '../helpers/relay/peers.ts';
import { LONG, SmtpClient, dataBlock, report, sleep, startRecordingUpstream } from './lib/smtp.ts';

const ROUNDS = LONG ? 30 : 6;
const WORKERS = 6;
const POINTS = ['data', 'after-250', 'delivery', 'upstream-250', 'reload', 'random'] as const;
type Point = (typeof POINTS)[number];

type ClientState = 'partial' | 'sent' | 'acked' | 'refused';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

function body(id: string, size: number): string {
  const filler = 'The quick brown fox jumps over the lazy dog 0123456789.\r\n';
  return (
    `From: a@example.com\r\nTo: b@example.org\r\nSubject: crash ${id}\r\nX-Test-Id: ${id}\r\n` +
    `Message-ID: <${id}@reliability.test>\r\n\r\n${filler.repeat(Math.ceil(size / filler.length))}`
  );
}

/**
 * Test ids the spool still holds: queue/ copies, and journal batch records not listed in their
 * batch's done log (a restart delivers exactly these). A message's copy in queue/ is written only
 * a second after its commit, so a recent message is in the journal alone.
 */
async function spooledIds(spool: string): Promise<{ queue: Set<string>; journal: Set<string> }> {
  const found = { queue: new Set<string>(), journal: new Set<string>() };
  const queueDir = join(spool, 'queue');
  for (const name of await readdir(queueDir).catch(() => [] as string[])) {
    if (!name.endsWith('.msg')) continue;
    const text = await readFile(join(queueDir, name), 'latin1').catch(() => '');
    for (const m of text.matchAll(/^X-Test-Id: (\S+)/gm)) found.queue.add(m[1]!);
  }
  const journalDir = join(spool, 'journal');
  for (const name of await readdir(journalDir).catch(() => [] as string[])) {
    if (!name.endsWith('.jnl')) continue;
    const text = await readFile(join(journalDir, name), 'latin1').catch(() => '');
    const doneText = await readFile(join(journalDir, `${name.slice(0, -4)}.done`), 'latin1').catch(() => '');
    const done = new Set(doneText.split('\n').filter(Boolean));
    // Each record: its envelope (JSON with the spool id), then the message with its X-Test-Id;
    // a streamed batch (MFS1, the only file a streamed message has) holds one record, envelope last.
    if (text.startsWith('MFS1\n')) {
      const m = /^X-Test-Id: (\S+)[\s\S]*"id":"([^"]+)"/m.exec(text);
      if (m && !done.has(m[2]!)) found.journal.add(m[1]!);
      continue;
    }
    for (const m of text.matchAll(/"id":"([^"]+)"[\s\S]*?^X-Test-Id: (\S+)/gm))
      if (!done.has(m[1]!)) found.journal.add(m[2]!);
  }
  return found;
}

describe('crash durability', () => {
  test(`SIGKILL at chosen points, ${ROUNDS} rounds, restart on the same spool`, async () => {
    const upstream = await startRecordingUpstream();
    const spool = await tempDir('crash-spool');
    const cfgDir = await tempDir('crash-cfg');
    const configPath = join(cfgDir, 'relay.yaml');
    cleanups.push(
      () => upstream.stop(),
      () => removeDir(spool),
      () => removeDir(cfgDir),
    );
    const config = (maxRecipients: number) =>
      relayConfig(spool, upstream.port, {
        delivery: {
          mode: 'smarthost',
          maxConnectionsPerDestination: 4,
          smarthost: { host: '127.0.0.1', port: upstream.port, tls: 'starttls-opportunistic' },
          connectTimeout: '2s',
          commandTimeout: '5s',
        },
        limits: { maxRecipients, maxConnectionsPerClient: 200 },
        dsn: { enabled: false },
      });

    const states = new Map<string, ClientState>();
    let relay: RelayProcess | undefined;
    let port = 0;
    let stopping = false;
    let armed: Point | undefined;
    let kill: ((how: string) => void) | undefined;
    const malformed: string[] = [];

    const worker = async (w: number) => {
      let seq = 0;
      while (!stopping) {
        if (!relay || port === 0) {
          await sleep(20);
          continue;
        }
        let client: SmtpClient;
        try {
          client = await SmtpClient.connect(port);
          const greet = await client.reply();
          if (greet.code !== 220) throw new Error(`greeting ${greet.code}`);
          await client.command('EHLO load.test');
        } catch {
          await sleep(30);
          continue;
        }
        try {
          const perConnection = 1 + Math.floor(Math.random() * 5);
          for (let k = 0; k < perConnection && !stopping; k++) {
            const id = `c${w}-${seq++}`;
            if ((await client.command('MAIL FROM:<a@example.com>')).code !== 250) break;
            if ((await client.command('RCPT TO:<b@example.org>')).code !== 250) break;
            if ((await client.command('DATA')).code !== 354) break;
            // One message in ten over 1 MiB: alone it fills a batch, which the spool commits beside
            // the running ones, written on the thread pool (spool/group-commit.ts, fs-ops.ts).
            const size =
              Math.random() < 0.1
                ? 1_100_000 + Math.floor(Math.random() * 500_000)
                : 500 + Math.floor(Math.random() * 40_000);
            const block = dataBlock(body(id, size));
            const half = Math.floor(block.length / 2);
            states.set(id, 'partial');
            client.write(block.slice(0, half));
            if (armed === 'data') {
              armed = undefined;
              await sleep(5);
              kill?.(`mid-DATA of ${id}`);
              break;
            }
            client.write(block.slice(half));
            states.set(id, 'sent');
            const r = await client.reply();
            states.set(id, r.code === 250 ? 'acked' : 'refused');
            if (r.code === 250 && armed === 'after-250') {
              armed = undefined;
              kill?.(`after 250 of ${id}`);
            }
          }
          client.write('QUIT\r\n');
        } catch {
          // The relay died under this session: the states say what the client knew.
        }
        malformed.push(...client.malformed);
        client.close();
      }
    };

    upstream.onDataStart = () => {
      if (armed === 'delivery') {
        armed = undefined;
        kill?.('mid-delivery');
      }
    };
    upstream.onAccepted = (id) => {
      if (armed === 'upstream-250') {
        armed = undefined;
        kill?.(`right after the upstream's 250 for ${id}`);
      }
    };

    // Per kill: what was spooled (a restart delivers it again) and when the next relay started.
    const kills: { spooled: Set<string>; journal: Set<string>; killedAt: number; restartAt: number }[] = [];
    const recoveries: number[] = [];
    const killLog: string[] = [];
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
    try {
      await writeConfig(configPath, config(100));
      for (let round = 0; round < ROUNDS; round++) {
        const started = Date.now();
        if (kills.length > 0) kills.at(-1)!.restartAt = started;
        relay = await startRelay(config(100), configPath);
        if (round > 0) recoveries.push(Date.now() - started);
        port = relay.ports.smtp;
        const current = relay;
        const exited = new Promise<void>((r) => current.proc.once('exit', () => r()));
        let how = '';
        kill = (what) => {
          how = what;
          current.proc.kill('SIGKILL');
        };
        await sleep(400 + Math.random() * 1200);
        const point = POINTS[round % POINTS.length]!;
        if (point === 'reload') {
          await writeConfig(configPath, config(round % 2 === 0 ? 50 : 99));
          await sleep(Math.random() * 500); // the relay polls every 200 ms here
          kill('during a config reload');
        } else if (point === 'random') {
          kill('at a random moment');
        } else {
          armed = point;
          await sleep(5000);
          if (armed) {
            armed = undefined;
            kill(`fallback: ${point} did not happen within 5 s`);
          }
        }
        await exited;
        port = 0;
        kill = undefined;
        const killedAt = Date.now();
        const { queue: spooled, journal } = await spooledIds(spool);
        kills.push({ spooled, journal, killedAt, restartAt: Number.POSITIVE_INFINITY });
        killLog.push(`${point}: ${how} (spooled ${spooled.size})`);
        relay = undefined;
      }
      // Final restart: stop the load, let the recovered queue drain.
      stopping = true;
      await Promise.all(workers);
      const started = Date.now();
      kills.at(-1)!.restartAt = started;
      relay = await startRelay(config(100), configPath);
      const last = relay;
      cleanups.push(() => last.stop('SIGKILL'));
      recoveries.push(Date.now() - started);
      await waitFor(
        async () => ((await (await last.http('/api/queue')).json()) as { messages: number }).messages === 0,
        120_000,
        'the recovered queue to drain',
      );
      const drainMs = Date.now() - started;
      await sleep(300);

      const acked = [...states].filter(([, s]) => s === 'acked').map(([id]) => id);
      const lost = acked.filter((id) => !upstream.delivered.has(id));
      const wronglyDelivered = [...states]
        .filter(([id, s]) => (s === 'partial' || s === 'refused') && upstream.delivered.has(id))
        .map(([id, s]) => `${id} (${s})`);
      const sentUnacked = [...states].filter(([, s]) => s === 'sent').map(([id]) => id);
      const sentUnackedDelivered = sentUnacked.filter((id) => upstream.delivered.has(id)).length;
      // In flight at a kill: still spooled when the relay died, yet accepted by the upstream
      // before the next relay started (so the restart sends it again).
      const inFlightAtKill = new Set(
        kills.flatMap((k) =>
          [...k.spooled, ...k.journal].filter((id) => (upstream.firstAt.get(id) ?? Infinity) < k.restartAt),
        ),
      );
      const duplicates = [...upstream.delivered].filter(([, n]) => n > 1).map(([id]) => id);
      const unexplained = duplicates.filter((id) => !inFlightAtKill.has(id));
      const notSent = [...upstream.delivered.keys()].filter((id) => !states.has(id));
      report('crash-durability', {
        rounds: ROUNDS,
        acked: acked.length,
        delivered: upstream.delivered.size,
        lost: lost.length,
        refused: [...states.values()].filter((s) => s === 'refused').length,
        cutMidData: [...states.values()].filter((s) => s === 'partial').length,
        sentNoReply: sentUnacked.length,
        sentNoReplyDelivered: sentUnackedDelivered,
        duplicates: duplicates.length,
        inFlightAtKills: inFlightAtKill.size,
        restartToListeningMsMax: Math.max(...recoveries),
        restartToListeningMsAvg: Math.round(recoveries.reduce((a, b) => a + b, 0) / recoveries.length),
        finalRestartToEmptyQueueMs: drainMs,
      });
      for (const line of killLog) process.stdout.write(`#   kill ${line}\n`);
      for (const id of unexplained)
        process.stdout.write(
          `#   unexplained duplicate ${id}: client ${states.get(id)}, delivered ${upstream.firstAt.get(id)} and ${upstream.lastAt.get(id)}, kills [queued, journal, killedAt, restartAt] ${JSON.stringify(kills.map((k) => [k.spooled.has(id), k.journal.has(id), k.killedAt, k.restartAt]))}\n`,
        );
      assert.deepEqual(malformed, [], 'every reply line is well formed');
      assert.deepEqual(lost, [], 'every message that got 250 is delivered');
      assert.deepEqual(wronglyDelivered, [], 'nothing refused or cut mid-DATA is delivered');
      assert.deepEqual(notSent, [], 'nothing is delivered that no client sent');
      assert.deepEqual(upstream.unknown, [], 'no unexpected messages (DSNs, mangled ids)');
      assert.deepEqual(unexplained, [], 'duplicates only for deliveries in flight at a kill');
      assert.ok(acked.length > ROUNDS * 10, `load was continuous (${acked.length} acknowledged)`);
    } finally {
      stopping = true;
      if (relay) await relay.stop('SIGKILL');
      await Promise.all(workers);
    }
  });
});
