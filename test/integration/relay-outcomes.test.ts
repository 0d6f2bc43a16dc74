// Delivery outcomes against a scripted smtp-server upstream: deferral then success, bounces with
// DSNs, per-recipient tracking, expiry, dropped connections and timeouts.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  rawMessage,
  readAccounting,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';

const queued = (response: string) => /queued as ([A-Z0-9]+)/.exec(response)?.[1] ?? '';

describe('relay delivery outcomes', () => {
  let upstream: ScriptedUpstream;
  let relay: RelayProcess;
  let spool: string;

  before(async () => {
    upstream = await startScripted();
    spool = await tempDir('spool');
    relay = await startRelay(
      relayConfig(spool, upstream.port, {
        retry: { firstRetry: '1s', maxBackoff: '1s', maxQueueLifetime: '4s' },
        delivery: {
          mode: 'smarthost',
          smarthost: { host: '127.0.0.1', port: upstream.port, tls: 'starttls-opportunistic' },
          connectTimeout: '1s',
          commandTimeout: '1s',
        },
      }),
    );
  });
  after(async () => {
    await relay?.stop();
    await upstream?.stop();
    await removeDir(spool);
  });

  test('a 451 defers the message and the next attempt delivers it', async () => {
    let tries = 0;
    upstream.onData = (raw) =>
      raw.includes('defer-once') && tries++ === 0 ? { code: 451, message: '4.3.0 try again' } : undefined;
    const sent = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['d@example.org'],
      raw: rawMessage('defer-once'),
    });
    assert.ok(sent.ok);
    await waitFor(
      () => upstream.received.some((m) => m.raw.includes('defer-once')),
      10000,
      'delivery after retry',
    );
    // The outcome is recorded after the upstream's reply reaches the relay, and the accounting
    // line is written at the end of that turn: wait for it rather than race it.
    const linesOf = async () =>
      (await readAccounting(spool)).filter((l) => l.queueId === queued(sent.response));
    await waitFor(async () => (await linesOf()).length >= 2, 10000, 'the delivered accounting line');
    const lines = await linesOf();
    assert.deepEqual(
      lines.map((l) => l.outcome),
      ['deferred', 'delivered'],
    );
    assert.equal(lines[1]?.attempts, 2);
  });

  test('a 550 5.1.1 bounces one recipient, delivers the other, and sends one DSN to the sender', async () => {
    upstream.onData = () => undefined;
    upstream.onRcpt = (to) =>
      to === 'gone@example.org' ? { code: 550, message: '5.1.1 User unknown' } : undefined;
    const sent = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['gone@example.org', 'here@example.org'],
      raw: rawMessage('bounce-one'),
    });
    assert.ok(sent.ok);
    await waitFor(
      () => upstream.received.some((m) => m.from === '' && m.raw.includes('bounce-one')),
      10000,
      'the DSN',
    );
    const delivered = upstream.received.filter(
      (m) => m.raw.includes('Subject: test bounce-one') && m.from !== '',
    );
    assert.deepEqual(
      delivered.map((m) => m.to),
      [['here@example.org']],
    );
    const dsn = upstream.received.find((m) => m.from === '' && m.raw.includes('bounce-one'))!;
    assert.deepEqual(dsn.to, ['a@example.com']);
    assert.match(dsn.raw, /report-type=delivery-status/);
    assert.match(dsn.raw, /Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1/);
    const lines = (await readAccounting(spool)).filter((l) => l.queueId === queued(sent.response));
    assert.deepEqual(lines.map((l) => [l.recipient, l.outcome, l.category]).sort(), [
      ['gone@example.org', 'bounced', 'bad-mailbox'],
      ['here@example.org', 'delivered', ''],
    ]);
    assert.equal(
      await relay.metric('mailfleet_relay_recipients_bounced_total', { category: 'bad-mailbox' }),
      1,
    );
    assert.ok(
      (await relay.metric('mailfleet_relay_bounce_rate_ratio', { sending_domain: 'example.com' })) > 0,
    );
  });

  test('a bounce of a null-sender message produces no DSN', async () => {
    upstream.onRcpt = (to) =>
      to === 'nobounce@example.org' ? { code: 550, message: '5.1.1 User unknown' } : undefined;
    const before = await relay.metric('mailfleet_relay_dsn_generated_total');
    const sent = await sendMessage(relay.ports.smtp, {
      from: '',
      to: ['nobounce@example.org'],
      raw: rawMessage('null-sender'),
    });
    assert.ok(sent.ok);
    await waitFor(
      async () =>
        (await readAccounting(spool)).some(
          (l) => l.queueId === queued(sent.response) && l.outcome === 'bounced',
        ),
      10000,
      'the bounce',
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await relay.metric('mailfleet_relay_dsn_generated_total'), before);
  });

  test('a dropped connection and a hung DATA are deferred, then delivered', async () => {
    upstream.onRcpt = () => undefined;
    let drops = 0;
    upstream.onData = (raw) => {
      if (raw.includes('drop-me') && drops++ === 0) return 'drop';
      if (raw.includes('hang-me') && drops++ < 3) return 'hang';
      return undefined;
    };
    const a = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['d@example.org'],
      raw: rawMessage('drop-me'),
    });
    const b = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['d@example.org'],
      raw: rawMessage('hang-me'),
    });
    assert.ok(a.ok && b.ok);
    await waitFor(
      () =>
        upstream.received.some((m) => m.raw.includes('drop-me')) &&
        upstream.received.some((m) => m.raw.includes('hang-me')),
      15000,
      'both delivered',
    );
    // The relay logs the outcome after the upstream's 250 reply: the upstream may hold the message
    // a moment before the accounting line is written.
    const ids = [queued(a.response), queued(b.response)];
    await waitFor(
      async () => {
        const logged = await readAccounting(spool);
        return ids.every((id) => logged.some((l) => l.queueId === id && l.outcome === 'delivered'));
      },
      15000,
      'both logged as delivered',
    );
    const lines = await readAccounting(spool);
    for (const id of ids) {
      const outcomes = lines.filter((l) => l.queueId === id).map((l) => l.outcome);
      assert.equal(outcomes.at(-1), 'delivered');
      assert.ok(outcomes.includes('deferred'), `${id} was deferred first`);
    }
  });

  test('a message that keeps getting 4xx expires after maxQueueLifetime with a DSN', async () => {
    // The DSN quotes the original headers, so only the original is refused.
    upstream.onData = (raw) =>
      raw.includes('Subject: test never') && !raw.includes('delivery-status')
        ? { code: 452, message: '4.2.2 Mailbox full' }
        : undefined;
    const sent = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['full@example.org'],
      raw: rawMessage('never'),
    });
    await waitFor(
      async () =>
        (await readAccounting(spool)).some(
          (l) => l.queueId === queued(sent.response) && l.outcome === 'expired',
        ),
      15000,
      'expiry',
    );
    await waitFor(
      () => upstream.received.some((m) => m.from === '' && m.raw.includes('Subject: test never')),
      5000,
      'DSN',
    );
    const dsn = upstream.received.find((m) => m.from === '' && m.raw.includes('Subject: test never'))!;
    assert.match(dsn.raw, /Status: 4.4.7/);
    assert.equal(await relay.metric('mailfleet_relay_recipients_expired_total'), 1);
    const api = await (await relay.http(`/api/messages/${queued(sent.response)}`)).status;
    assert.equal(api, 404, 'the expired message left the queue');
  });
});
