// RFC 3461 DSN parameters through a real relay process: RET and ENVID on MAIL FROM, NOTIFY and
// ORCPT per recipient, taken from the client, kept in the spool, given to a next hop that
// advertises DSN (and to none that does not), and honoured in the DSNs the relay writes: failed,
// relayed (NOTIFY=SUCCESS to a next hop without DSN).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  rawMessage,
  relayConfig,
  removeDir,
  smtpTransaction,
  startRelay,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';

interface Relay {
  upstream: ScriptedUpstream;
  relay: RelayProcess;
}
const running: Relay[] = [];
const spools: string[] = [];

async function relayTo(
  upstreamOptions: Parameters<typeof startScripted>[0] = {},
  config: Record<string, unknown> = {},
): Promise<Relay> {
  const upstream = await startScripted(upstreamOptions);
  const spool = await tempDir('dsn');
  spools.push(spool);
  const relay = await startRelay(relayConfig(spool, upstream.port, config));
  const r = { upstream, relay };
  running.push(r);
  return r;
}

describe('DSN parameters (RFC 3461)', () => {
  let dsnHop: Relay;
  let plainHop: Relay;
  before(async () => {
    dsnHop = await relayTo({ hideDSN: false });
    plainHop = await relayTo(); // smtp-server's default: DSN not advertised
  });
  after(async () => {
    for (const r of running) {
      await r.relay.stop();
      await r.upstream.stop();
    }
    for (const s of spools) await removeDir(s);
  });

  test('the relay advertises DSN, and gives each parameter to a next hop that advertises it', async () => {
    const replies = await smtpTransaction(
      dsnHop.relay.ports.smtp,
      '<a@example.com> RET=HDRS ENVID=env+2B1',
      [
        '<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alias+2Bb@example.org',
        '<c@example.org>',
        '<d@example.org> NOTIFY=NEVER',
      ],
      rawMessage('pass-on'),
    );
    assert.match(replies[1] ?? '', /^250[- ]DSN\r?$/m, 'EHLO lists DSN');
    assert.match(replies.at(-1) ?? '', /^250 /, `accepted: ${replies.join('|')}`);
    await waitFor(() => dsnHop.upstream.received.some((m) => m.raw.includes('pass-on')), 10000, 'delivery');
    const got = dsnHop.upstream.received.find((m) => m.raw.includes('pass-on'))!;
    assert.deepEqual(got.to, ['b@example.org', 'c@example.org', 'd@example.org']);
    assert.deepEqual(got.dsn, { ret: 'HDRS', envid: 'env+1' }, 'RET and ENVID, xtext round-tripped');
    assert.deepEqual(got.rcptDsn, [
      { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;alias+b@example.org' },
      undefined,
      { notify: ['NEVER'] },
    ]);
  });

  test('a next hop that does not advertise DSN gets the message without the parameters', async () => {
    const replies = await smtpTransaction(
      plainHop.relay.ports.smtp,
      '<a@example.com> RET=FULL ENVID=e2',
      ['<b@example.org> NOTIFY=FAILURE ORCPT=rfc822;b@example.org'],
      rawMessage('plain-hop'),
    );
    assert.match(replies.at(-1) ?? '', /^250 /);
    await waitFor(
      () => plainHop.upstream.received.some((m) => m.raw.includes('plain-hop')),
      10000,
      'delivery',
    );
    const got = plainHop.upstream.received.find((m) => m.raw.includes('plain-hop'))!;
    assert.equal(got.dsn, undefined);
    assert.deepEqual(got.rcptDsn, [undefined]);
  });

  test('NOTIFY=SUCCESS: a "relayed" DSN when the next hop does not advertise DSN, none when it does', async () => {
    const cases = [
      { name: 'plain hop', hop: plainHop, sender: 'r1@example.com', relayedDsn: true },
      { name: 'DSN hop', hop: dsnHop, sender: 'r2@example.com', relayedDsn: false },
    ];
    for (const c of cases) {
      const replies = await smtpTransaction(
        c.hop.relay.ports.smtp,
        `<${c.sender}> RET=FULL ENVID=rel-${c.hop === plainHop ? 1 : 2}`,
        [
          '<ok1@example.org> NOTIFY=SUCCESS ORCPT=rfc822;alias1@example.org',
          '<ok2@example.org> NOTIFY=FAILURE',
        ],
        rawMessage(`relayed-${c.sender}`),
      );
      assert.match(replies.at(-1) ?? '', /^250 /, c.name);
    }
    const dsnTo = (hop: Relay, sender: string) =>
      hop.upstream.received.find((m) => m.from === '' && m.to[0] === sender);
    await waitFor(() => Boolean(dsnTo(plainHop, 'r1@example.com')), 15000, 'the relayed DSN');
    const relayed = dsnTo(plainHop, 'r1@example.com')!.raw;
    assert.match(relayed, /Original-Envelope-Id: rel-1\r\n/);
    assert.match(
      relayed,
      /Original-Recipient: rfc822;alias1@example.org\r\nFinal-Recipient: rfc822; ok1@example.org\r\nAction: relayed\r\nStatus: 2\.\d\.\d/,
    );
    assert.doesNotMatch(relayed, /Final-Recipient: rfc822; ok2/);
    assert.match(relayed, /Content-Type: text\/rfc822-headers/, 'RET=FULL is for failures: headers only');
    assert.doesNotMatch(relayed, /body of relayed-/);
    // The DSN hop took NOTIFY itself (it reports success): this relay sends nothing.
    await waitFor(
      () => dsnHop.upstream.received.some((m) => m.raw.includes('relayed-r2@example.com')),
      10000,
      'delivery to the DSN hop',
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(dsnTo(dsnHop, 'r2@example.com'), undefined);
  });

  test('NOTIFY=DELAY: one "delayed" DSN once retry.delayWarningAfter has passed, never a second, none without DELAY', async () => {
    // Retries every 1-2 s; the warning after 3 s: several deferrals before and after it.
    const { upstream, relay } = await relayTo(
      {},
      { retry: { firstRetry: '1s', maxBackoff: '2s', maxQueueLifetime: '1h', delayWarningAfter: '3s' } },
    );
    upstream.onRcpt = () => ({ code: 451, message: '4.4.1 try again later' });
    const replies = await smtpTransaction(
      relay.ports.smtp,
      '<w@example.com> RET=FULL ENVID=wait-1',
      [
        '<slow1@example.org> NOTIFY=DELAY,FAILURE ORCPT=rfc822;alias-slow@example.org',
        '<slow2@example.org>',
        '<slow3@example.org> NOTIFY=FAILURE',
      ],
      rawMessage('delayed-mail'),
    );
    assert.match(replies.at(-1) ?? '', /^250 /);
    const warnings = () => upstream.received.filter((m) => m.from === '' && m.to[0] === 'w@example.com');
    // The DSN goes to the same deferring upstream: let the null sender's mail through.
    upstream.onRcpt = (to) =>
      to === 'w@example.com' ? undefined : { code: 451, message: '4.4.1 try again later' };
    const sentAt = Date.now();
    await waitFor(() => warnings().length > 0, 20000, 'the delayed DSN');
    assert.ok(Date.now() - sentAt >= 2000, 'not before delayWarningAfter');
    const warning = warnings()[0]!.raw;
    assert.match(warning, /Subject: Delayed Mail \(still being retried\)/);
    assert.match(warning, /Original-Envelope-Id: wait-1\r\n/);
    assert.match(
      warning,
      /Original-Recipient: rfc822;alias-slow@example.org\r\nFinal-Recipient: rfc822; slow1@example.org\r\nAction: delayed\r\nStatus: 4\.4\.1/,
    );
    assert.doesNotMatch(warning, /Final-Recipient: rfc822; slow2/, 'no NOTIFY: failures only');
    assert.doesNotMatch(warning, /Final-Recipient: rfc822; slow3/, 'NOTIFY=FAILURE: no warning');
    assert.doesNotMatch(warning, /body of delayed-mail/, 'headers only');
    // RFC 3464 §2.3.9: the queue gives up at arrival + retry.maxQueueLifetime (1h here).
    const arrival = Date.parse(/\r\nArrival-Date: ([^\r\n]+)/.exec(warning)?.[1] ?? '');
    const until = Date.parse(
      /Status: 4\.4\.1\r\n(?:[^\r\n]+\r\n)*?Will-Retry-Until: ([^\r\n]+)/.exec(warning)?.[1] ?? '',
    );
    assert.ok(
      Number.isFinite(arrival) && Math.abs(arrival - sentAt) < 5000,
      'Arrival-Date is the submission',
    );
    assert.equal(until - arrival, 3600_000, 'Will-Retry-Until = Arrival-Date + maxQueueLifetime');
    // More deferrals (every 1-2 s), then delivery: still exactly one warning.
    await new Promise((r) => setTimeout(r, 5000));
    upstream.onRcpt = () => undefined;
    await waitFor(
      () => upstream.received.some((m) => m.from === 'w@example.com' && m.raw.includes('delayed-mail')),
      20000,
      'delivery after recovery',
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(warnings().length, 1, 'one delayed DSN, ever');
  });

  test('the DSN for a bounce honours NOTIFY per recipient, RET=FULL, ENVID and ORCPT', async () => {
    const { upstream, relay } = dsnHop;
    upstream.onRcpt = (to) =>
      to.startsWith('gone') ? { code: 550, message: '5.1.1 no such user' } : undefined;
    const cases: { name: string; mail: string; rcpts: string[] }[] = [
      {
        name: 'full',
        mail: '<s1@example.com> RET=FULL ENVID=QQ314159',
        rcpts: [
          '<gone1@example.org> NOTIFY=FAILURE ORCPT=rfc822;alias@example.org',
          '<gone2@example.org> NOTIFY=NEVER',
        ],
      },
      { name: 'never', mail: '<s2@example.com>', rcpts: ['<gone3@example.org> NOTIFY=SUCCESS,DELAY'] },
      { name: 'default', mail: '<s3@example.com>', rcpts: ['<gone4@example.org>'] },
    ];
    for (const c of cases) {
      const replies = await smtpTransaction(
        relay.ports.smtp,
        c.mail,
        c.rcpts,
        rawMessage(`bounce-${c.name}`),
      );
      assert.match(replies.at(-1) ?? '', /^250 /, c.name);
    }
    // The DSNs go, from the null sender, to the senders (through the same smarthost).
    const dsnTo = (sender: string) => upstream.received.find((m) => m.from === '' && m.to[0] === sender);
    await waitFor(() => Boolean(dsnTo('s1@example.com') && dsnTo('s3@example.com')), 15000, 'DSNs');
    const full = dsnTo('s1@example.com')!.raw;
    assert.match(full, /Original-Envelope-Id: QQ314159\r\n/);
    assert.match(
      full,
      /Original-Recipient: rfc822;alias@example.org\r\nFinal-Recipient: rfc822; gone1@example.org/,
    );
    assert.doesNotMatch(full, /gone2@example.org/, 'NOTIFY=NEVER: not reported');
    assert.match(
      full,
      /Content-Type: message\/rfc822\r\n\r\n[^]*body of bounce-full/,
      'RET=FULL: the whole message',
    );
    const plain = dsnTo('s3@example.com')!.raw;
    assert.match(plain, /Final-Recipient: rfc822; gone4@example.org/, 'no NOTIFY: failures are reported');
    assert.match(plain, /Content-Type: text\/rfc822-headers/);
    assert.doesNotMatch(plain, /body of bounce-default/, 'without RET=FULL only the headers come back');
    assert.doesNotMatch(plain, /Original-Envelope-Id/);
    // NOTIFY=SUCCESS,DELAY (no FAILURE): the bounce is accounted but no DSN is sent.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(dsnTo('s2@example.com'), undefined);
    upstream.onRcpt = () => undefined;
  });
});
