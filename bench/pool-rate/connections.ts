// Pool-wide connection caps: three relays of one pool, a Pool-scoped limit of `cap` connections to
// one destination, 3/4 of the mail submitted to relay a. Measured at the upstream, which holds
// each message `delayMs` before its 250 and counts the sessions open at once: the most open at
// once, the time-weighted mean open while mail was flowing, and the delivered rate. With the
// static share each relay may open floor(cap/3) (at least 1); with leases in the store the pool
// holds `cap` together. Postfix ×3 with a destination concurrency limit of the share each is the
// reference (Postfix has no pool-wide cap). Not a test: it asserts nothing.
import { waitFor } from '../../test/helpers/relay/peers.ts';
import { steadyRate, submitTo } from '../../test/helpers/relay/rate.ts';
import { startCountingUpstream } from '../../test/helpers/relay/counting-upstream.ts';
import { postfixTrio, relayTrio, type Servers, type SharedStore } from './trio.ts';

export interface ConnectionRow {
  setup: string;
  cap: number;
  messages: number;
  peak: number;
  meanOpen: number;
  rate: number;
}

/** Samples the upstream's open sessions every 5 ms while mail flows; the mean of the samples. */
async function measure(
  setup: string,
  cap: number,
  total: number,
  delayMs: number,
  start: (upstreamPort: number) => Promise<Servers>,
): Promise<ConnectionRow> {
  const upstream = await startCountingUpstream();
  upstream.delayMs = delayMs;
  const servers = await start(upstream.port);
  const small = Math.round(total / 8);
  const counts = [total - 2 * small, small, small];
  const samples: number[] = [];
  const sampler = setInterval(() => {
    if (upstream.arrivals.length > 0 && upstream.delivered.size < total) samples.push(upstream.open);
  }, 5);
  try {
    await Promise.all(
      servers.ports.map((port, i) => submitTo(port, counts[i]!, (n) => `${'abc'[i]}-${n}@conn.test`)),
    );
    await waitFor(() => upstream.delivered.size === total, 600_000, `${setup}: all delivered`);
  } finally {
    clearInterval(sampler);
    await servers.stop();
    await upstream.stop();
  }
  const row = {
    setup,
    cap,
    messages: total,
    peak: upstream.peak,
    meanOpen: samples.reduce((s, x) => s + x, 0) / Math.max(1, samples.length),
    rate: steadyRate(upstream.arrivals),
  };
  process.stderr.write(`measured: ${JSON.stringify(row)}\n`);
  return row;
}

function relays(work: string, cap: number, shared: SharedStore | undefined) {
  const share = Math.max(1, Math.floor(cap / 3));
  return relayTrio(work, `bench-connections:${Date.now()}:`, shared, {
    name: 'conns',
    match: { recipientDomains: ['conn.test'] },
    maxConnections: share,
    ...(shared ? { pool: { maxConnections: cap } } : {}),
  });
}

function postfixes(work: string, share: number) {
  return postfixTrio(work, `postfix-conn-${share}-${Date.now()}`, [
    `default_destination_concurrency_limit = ${share}`,
    `smtp_destination_concurrency_limit = ${share}`,
  ]);
}

export async function connectionCaps(
  work: string,
  shared: SharedStore,
  o: { caps: number[]; messages: number; delayMs: number; postfix: boolean },
): Promise<ConnectionRow[]> {
  const rows: ConnectionRow[] = [];
  for (const cap of o.caps) {
    const share = Math.max(1, Math.floor(cap / 3));
    rows.push(
      await measure(
        `mailfleet, static share (${share} per relay)`,
        cap,
        o.messages,
        o.delayMs,
        relays(work, cap, undefined),
      ),
    );
    rows.push(
      await measure(
        'mailfleet, leases in redis-server (sharedState)',
        cap,
        o.messages,
        o.delayMs,
        relays(work, cap, shared),
      ),
    );
    if (o.postfix)
      rows.push(
        await measure(
          `postfix ×3, destination concurrency ${share} each`,
          cap,
          o.messages,
          o.delayMs,
          postfixes(work, share),
        ),
      );
  }
  process.stdout.write(
    `Pool-wide maxConnections: 3 relays, one destination holding each message ${o.delayMs} ms, 3/4 of the mail submitted to relay a.\n` +
      `| setup | pool cap | messages | most open at once | mean open | delivered/s |\n|---|---|---|---|---|---|\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.setup} | ${r.cap} | ${r.messages} | ${r.peak} | ${r.meanOpen.toFixed(2)} | ${r.rate.toFixed(1)} |\n`,
    );
  return rows;
}
