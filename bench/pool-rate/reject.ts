// Pool-wide reject limits (onExceed: reject, counted at RCPT TO): three relays of one pool, a
// limit of `limit` recipients per hour for the pool, recipients offered unevenly (relay a 4/3 of
// the limit, b 2/5 of it, c 1/15). Within the hour no credit comes back, so the figure is exact:
// recipients answered 250 across the pool, next to the limit. The static share accepts at most
// limit/3 per relay; the store, the limit wherever the recipients arrive. Postfix ×3 with
// smtpd_client_recipient_rate_limit of the share each (anvil, per client and instance) is the
// reference (Postfix has no pool-wide count). Not a test: it asserts nothing.
import { smtpTransaction, startScripted } from '../../test/helpers/relay/peers.ts';
import { postfixTrio, relayTrio, type Servers, type SharedStore } from './trio.ts';

export interface RejectRow {
  setup: string;
  limit: number;
  offered: number;
  accepted: number;
}

/** Offers `count` recipients in sessions of up to 10 RCPT TO (no DATA); how many got 250. */
async function offer(port: number, tag: string, count: number): Promise<number> {
  let accepted = 0;
  for (let start = 0; start < count; start += 10) {
    const rcpts = Array.from(
      { length: Math.min(10, count - start) },
      (_, i) => `<${tag}-${start + i}@reject.test>`,
    );
    const replies = await smtpTransaction(port, '<a@example.com>', rcpts, undefined);
    accepted += replies.slice(3, 3 + rcpts.length).filter((r) => r.startsWith('250')).length;
  }
  return accepted;
}

async function measure(
  setup: string,
  limit: number,
  start: (upstreamPort: number) => Promise<Servers>,
): Promise<RejectRow> {
  const upstream = await startScripted();
  const servers = await start(upstream.port);
  const counts = [Math.round((limit * 4) / 3), Math.round((limit * 2) / 5), Math.round(limit / 15)];
  let accepted = 0;
  try {
    const each = await Promise.all(servers.ports.map((port, i) => offer(port, 'abc'[i]!, counts[i]!)));
    accepted = each.reduce((x, y) => x + y, 0);
  } finally {
    await servers.stop();
    await upstream.stop();
  }
  const row = { setup, limit, offered: counts.reduce((x, y) => x + y, 0), accepted };
  process.stderr.write(`measured: ${JSON.stringify(row)}\n`);
  return row;
}

function relays(work: string, limit: number, shared: SharedStore | undefined) {
  const share = Math.floor(limit / 3);
  return relayTrio(work, `bench-reject:${Date.now()}:`, shared, {
    name: 'signup',
    match: { recipientDomains: ['reject.test'] },
    rate: { messages: share, per: 'hour' },
    burst: share,
    onExceed: 'reject',
    ...(shared ? { pool: { rate: { messages: limit, per: 'hour' }, burst: limit } } : {}),
  });
}

function postfixes(work: string, limit: number) {
  const share = Math.floor(limit / 3);
  return postfixTrio(work, 'postfix-reject', [
    `smtpd_client_recipient_rate_limit = ${share}`,
    'anvil_rate_time_unit = 3600s',
    // By default clients in mynetworks (the bench's 127.0.0.1) are exempt.
    'smtpd_client_event_limit_exceptions =',
  ]);
}

export async function rejectAccuracy(
  work: string,
  shared: SharedStore,
  o: { limit: number; postfix: boolean },
): Promise<RejectRow[]> {
  const share = Math.floor(o.limit / 3);
  const rows = [
    await measure(
      `mailfleet, static share (${share}/h per relay)`,
      o.limit,
      relays(work, o.limit, undefined),
    ),
    await measure('mailfleet, GCRA in redis-server (sharedState)', o.limit, relays(work, o.limit, shared)),
  ];
  if (o.postfix)
    rows.push(
      await measure(
        `postfix ×3, smtpd_client_recipient_rate_limit = ${share}/h each`,
        o.limit,
        postfixes(work, o.limit),
      ),
    );
  process.stdout.write(
    `Pool-wide reject limit (RCPT TO): 3 relays, recipients offered unevenly (4/3, 2/5 and 1/15 of the limit), within one hour.\n` +
      `| setup | pool limit/h | offered | accepted | of the limit |\n|---|---|---|---|---|\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.setup} | ${r.limit} | ${r.offered} | ${r.accepted} | ${((r.accepted / r.limit) * 100).toFixed(1)} % |\n`,
    );
  return rows;
}
