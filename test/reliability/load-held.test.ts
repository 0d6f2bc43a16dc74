// Load held: the relay's maximum accept rate is measured briefly (SESSIONS raw SMTP clients as
// fast as they can for 10 s, relaying to Postfix's smtp-sink), then 80 % of it is held, paced, for
// 30 s (10 min with MAILFLEET_LONG=1). Per 5 s window: relay RSS (/proc/<pid>/status VmRSS) and the
// accept-latency p99 (MAIL FROM sent -> 250 after the final "."). Asserted: every accepted message
// is delivered (lost 0), memory growth over the hold is bounded, p99 stays stable. These are
// correctness and leak properties, not speed: the figures are printed, never compared with a target.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { relayConfig, removeDir, startRelay, startSink, tempDir, waitFor } from '../helpers/relay/peers.ts';
import type { RelayProcess, Sink } from '../helpers/relay/peers.ts';
import { LONG, SmtpClient, dataBlock, messageId, percentile, report, sleep } from './lib/smtp.ts';

const SESSIONS = 8;
const SATURATE_MS = 10_000;
const HOLD_MS = LONG ? 600_000 : 30_000;
const WINDOW_MS = 5_000;
const HOLD_FRACTION = 0.8;
const RSS_BOUND = 64 * 1024 * 1024;
/** p99 is "stable" when the median window p99 of the second half ≤ this × the first half's... */
const P99_FACTOR = 3;
/** ...or ≤ the first half's + this many ms (a tiny first-half p99 would make 3× meaninglessly tight). */
const P99_SLACK_MS = 100;
const MiB = 1024 * 1024;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

type Result = { id: string; code: number; end: number; latency: number };

function message(id: string): string {
  return `From: a@example.com\r\nTo: b@example.org\r\nSubject: load ${id}\r\nX-Test-Id: ${id}\r\n\r\n${'z'.repeat(2000)}\r\n`;
}

/**
 * SESSIONS clients until `until`; with `rate` (messages/s) the transactions are paced on one shared
 * schedule (slot i at start + i/rate), otherwise each client sends as fast as the relay answers.
 */
async function drive(port: number, prefix: string, until: number, rate?: number) {
  const results: Result[] = [];
  const errors: string[] = [];
  const start = Date.now();
  let seq = 0;
  let behind = 0;
  await Promise.all(
    Array.from({ length: SESSIONS }, async () => {
      let c: SmtpClient | undefined;
      while (Date.now() < until) {
        const i = seq++;
        if (rate) {
          const slot = start + (i * 1000) / rate;
          if (slot >= until) break;
          const wait = slot - Date.now();
          if (wait > 0) await sleep(wait);
          else if (wait < -1000) behind++;
        }
        const id = `${prefix}-${i}`;
        try {
          if (!c || c.closed) {
            c = await SmtpClient.connect(port);
            await c.reply();
            await c.command('EHLO load.test');
          }
          const t0 = performance.now();
          const mail = await c.command('MAIL FROM:<a@example.com>');
          if (mail.code !== 250) {
            results.push({ id, code: mail.code, end: Date.now(), latency: performance.now() - t0 });
            continue;
          }
          await c.command('RCPT TO:<b@example.org>');
          const data = await c.command('DATA');
          if (data.code !== 354) {
            results.push({ id, code: data.code, end: Date.now(), latency: performance.now() - t0 });
            continue;
          }
          c.write(dataBlock(message(id)));
          const r = await c.reply(30_000);
          results.push({ id, code: r.code, end: Date.now(), latency: performance.now() - t0 });
        } catch (error) {
          errors.push(`${id}: ${String(error)}`);
          c?.close();
          c = undefined;
        }
      }
      if (c) {
        errors.push(...c.malformed.map((l) => `malformed: ${l}`));
        await c.command('QUIT', 2000).catch(() => undefined);
        c.close();
      }
    }),
  );
  return { results, errors, behind, ms: Date.now() - start };
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Theil–Sen slope (median of the pairwise slopes): a trend estimate one GC spike cannot move. */
function theilSen(points: { x: number; y: number }[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++)
    for (let j = i + 1; j < points.length; j++) {
      const dx = points[j]!.x - points[i]!.x;
      if (dx !== 0) slopes.push((points[j]!.y - points[i]!.y) / dx);
    }
  return median(slopes);
}

/** Ids of the messages smtp-sink dumped (one file per transaction). */
async function sinkIds(sink: Sink): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const name of await readdir(sink.dir)) {
    const raw = await readFile(join(sink.dir, name), 'latin1');
    const id = messageId(raw);
    if (id) ids.set(id, (ids.get(id) ?? 0) + 1);
  }
  return ids;
}

test(`load held at ${HOLD_FRACTION * 100} % of the measured maximum for ${HOLD_MS / 1000} s: nothing lost, memory bounded, p99 stable`, async () => {
  const sink = await startSink();
  cleanups.push(() => removeDir(sink.dir));
  cleanups.push(() => sink.stop());
  const spool = await tempDir('load-held');
  cleanups.push(() => removeDir(spool));
  const config = relayConfig(spool, sink.port);
  const relay: RelayProcess = await startRelay(config);
  cleanups.push(() => relay.stop());
  const pid = relay.proc.pid;
  assert.ok(pid);

  // 1. Saturation: the maximum accept rate.
  const sat = await drive(relay.ports.smtp, 'sat', Date.now() + SATURATE_MS);
  const satAcked = sat.results.filter((r) => r.code === 250).length;
  const maxRate = satAcked / (sat.ms / 1000);
  assert.ok(maxRate > 1, `the relay accepted something while saturated (${satAcked} in ${sat.ms} ms)`);
  const rate = maxRate * HOLD_FRACTION;
  // Let the queue of the saturation phase drain so the hold starts from a steady state.
  await waitFor(
    async () => ((await (await relay.http('/api/queue')).json()) as { messages: number }).messages === 0,
    120_000,
    'the saturation backlog to drain',
  );

  // 2. Hold, with RSS sampled every second.
  const holdStart = Date.now();
  const rss: { t: number; bytes: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      rss.push({ t: Date.now() - holdStart, bytes: await rssBytes(pid) });
      await sleep(1000);
    }
  })();
  const hold = await drive(relay.ports.smtp, 'hold', holdStart + HOLD_MS, rate);
  sampling = false;
  await sampler;

  // 3. Everything accepted is delivered.
  const all = [...sat.results, ...hold.results];
  const acked = all.filter((r) => r.code === 250);
  const drainStart = Date.now();
  await waitFor(
    async () =>
      ((await (await relay.http('/api/queue')).json()) as { messages: number }).messages === 0 &&
      (await readdir(sink.dir)).length >= acked.length,
    LONG ? 600_000 : 120_000,
    'the queue to drain into the sink',
  );
  const drainMs = Date.now() - drainStart;
  const delivered = await sinkIds(sink);
  const lost = acked.filter((r) => !delivered.has(r.id)).map((r) => r.id);
  const refused = all.filter((r) => r.code !== 250);

  // 4. Windows.
  const windows: { i: number; p99: number; n: number; rssMiB: number }[] = [];
  for (let i = 0; i * WINDOW_MS < HOLD_MS; i++) {
    const inWin = hold.results
      .filter(
        (r) =>
          r.code === 250 && r.end - holdStart >= i * WINDOW_MS && r.end - holdStart < (i + 1) * WINDOW_MS,
      )
      .map((r) => r.latency)
      .sort((a, b) => a - b);
    const mem = rss.filter((s) => s.t >= i * WINDOW_MS && s.t < (i + 1) * WINDOW_MS).map((s) => s.bytes);
    if (inWin.length === 0 || mem.length === 0) continue;
    windows.push({ i, p99: percentile(inWin, 0.99), n: inWin.length, rssMiB: median(mem) / MiB });
  }
  assert.ok(windows.length >= 4, `enough windows (${windows.length})`);
  const half = Math.floor(windows.length / 2);
  const p99First = median(windows.slice(0, half).map((w) => w.p99));
  const p99Second = median(windows.slice(half).map((w) => w.p99));
  const p99Limit = Math.max(P99_FACTOR * p99First, p99First + P99_SLACK_MS);
  const rssFirst = windows[0]!.rssMiB;
  const rssLast = windows.at(-1)!.rssMiB;
  const rssMax = Math.max(...rss.map((s) => s.bytes)) / MiB;
  // Trend over the whole hold, in MiB, extrapolated from the robust slope (MiB per ms).
  const slope = theilSen(windows.map((w) => ({ x: w.i * WINDOW_MS, y: w.rssMiB })));
  const trendMiB = slope * HOLD_MS;
  const holdAcked = hold.results.filter((r) => r.code === 250).length;

  report('load-held', {
    sessions: SESSIONS,
    satMs: sat.ms,
    satAcked,
    maxRate: maxRate.toFixed(1),
    targetRate: rate.toFixed(1),
    holdS: HOLD_MS / 1000,
    holdAcked,
    heldRate: (holdAcked / (hold.ms / 1000)).toFixed(1),
    behindOver1s: hold.behind,
    refused: refused.length,
    errors: sat.errors.length + hold.errors.length,
    delivered: delivered.size,
    lost: lost.length,
    drainMs,
    rssFirstMiB: rssFirst.toFixed(1),
    rssLastMiB: rssLast.toFixed(1),
    rssMaxMiB: rssMax.toFixed(1),
    rssTrendMiB: trendMiB.toFixed(1),
    p99FirstHalfMs: p99First.toFixed(1),
    p99SecondHalfMs: p99Second.toFixed(1),
    p99LimitMs: p99Limit.toFixed(1),
  });
  report('load-held windows', {
    p99Ms: windows.map((w) => Math.round(w.p99)),
    n: windows.map((w) => w.n),
    rssMiB: windows.map((w) => Math.round(w.rssMiB)),
  });

  assert.deepEqual(lost, [], 'every accepted message delivered');
  assert.deepEqual(
    [...sat.errors, ...hold.errors].filter((e) => e.startsWith('malformed')),
    [],
    'every reply well formed',
  );
  for (const r of refused)
    assert.ok(r.code >= 400 && r.code < 500, `${r.id}: refusals are transient (${r.code})`);
  assert.ok(
    rssLast <= rssFirst + RSS_BOUND / MiB,
    `last-window RSS ${rssLast} MiB ≤ first ${rssFirst} + 64 MiB`,
  );
  assert.ok(trendMiB <= RSS_BOUND / MiB, `RSS trend over the hold ${trendMiB.toFixed(1)} MiB ≤ 64 MiB`);
  assert.ok(p99Second <= p99Limit, `p99 stable: second half ${p99Second} ms ≤ ${p99Limit} ms`);
});
