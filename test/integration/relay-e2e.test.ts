// End to end through real peers: smtp-source and nodemailer in, the relay, smtp-sink out.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createTransport } from 'nodemailer';
import {
  rawMessage,
  readAccounting,
  relayConfig,
  removeDir,
  startRelay,
  startSink,
  tempDir,
  waitFor,
  type RelayProcess,
  type Sink,
} from '../helpers/relay/peers.ts';

describe('relay end to end', () => {
  let sink: Sink;
  let relay: RelayProcess;
  let spool: string;

  before(async () => {
    sink = await startSink();
    spool = await tempDir('spool');
    relay = await startRelay(relayConfig(spool, sink.port));
  });
  after(async () => {
    await relay?.stop();
    await sink?.stop();
    await removeDir(spool);
  });

  test('3000 distinct messages from 10 pooled nodemailer connections arrive exactly once each', async () => {
    const client = createTransport({
      pool: true,
      maxConnections: 10,
      host: '127.0.0.1',
      port: relay.ports.smtp,
      ignoreTLS: true,
    });
    const ids = Array.from({ length: 3000 }, (_, i) => `e2e-${i}`);
    const results = await Promise.all(
      ids.map((id) =>
        client.sendMail({ envelope: { from: 'a@example.com', to: ['b@example.org'] }, raw: rawMessage(id) }),
      ),
    );
    client.close();
    assert.equal(results.filter((r) => r.response.startsWith('250')).length, 3000);
    await waitFor(async () => (await sink.messages()).length >= 3000, 60000, '3000 messages at the sink');
    await new Promise((r) => setTimeout(r, 500));
    const seen = new Map<string, number>();
    for (const m of await sink.messages()) {
      const id = /Subject: test (e2e-\d+)/.exec(m)?.[1] ?? 'none';
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    assert.equal(seen.size, 3000, 'every message arrived');
    assert.deepEqual(
      [...seen.values()].filter((n) => n !== 1),
      [],
      'no message arrived twice',
    );
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_recipients_delivered_total')) === 3000,
      5000,
      'metrics',
    );
  });

  test('smtp-source with 20 sessions: every 250 is delivered', async () => {
    const before = (await sink.messages()).length;
    const r = spawnSync('/usr/sbin/smtp-source', [
      '-s',
      '20',
      '-m',
      '1000',
      '-l',
      '2048',
      '-f',
      'a@example.com',
      '-t',
      'b@example.org',
      `127.0.0.1:${relay.ports.smtp}`,
    ]);
    assert.equal(r.status, 0, r.stderr.toString());
    await waitFor(async () => (await sink.messages()).length >= before + 1000, 60000, '1000 more messages');
    assert.equal(
      await relay.metric('mailfleet_relay_messages_received_total', { sending_domain: 'example.com' }),
      4000,
    );
  });

  test('the message is relayed byte for byte after the Received header the relay adds', async () => {
    const body =
      'From: a@example.com\r\nSubject: bytes\r\n\r\n.leading dot\r\n  trailing spaces  \r\n\tTab\r\nx'.padEnd(
        300,
        'y',
      ) + '\r\n';
    const client = createTransport({ host: '127.0.0.1', port: relay.ports.smtp, ignoreTLS: true });
    const info = await client.sendMail({
      envelope: { from: 'a@example.com', to: ['bytes@example.org'] },
      raw: body,
    });
    const id = /queued as ([A-Z0-9]+)/.exec(info.response)?.[1];
    assert.ok(id);
    await waitFor(
      async () => (await sink.messages()).some((m) => m.includes('Subject: bytes')),
      10000,
      'the message',
    );
    const dumped = (await sink.messages()).find((m) => m.includes('Subject: bytes'))!;
    // smtp-sink dumps with LF endings; compare on LF.
    const ours = dumped.indexOf('Received: from');
    const relayed = dumped.slice(ours);
    const receivedEnd = relayed.indexOf('\nFrom: a@example.com');
    assert.match(
      relayed.slice(0, receivedEnd),
      new RegExp(`by relay.test \\(mailfleet\\) with ESMTP id ${id}`),
    );
    assert.equal(
      relayed.slice(receivedEnd + 1).replace(/\n+$/, ''),
      body.replace(/\r\n/g, '\n').replace(/\n+$/, ''),
    );
  });

  test('an accounting line is written per recipient with the stable keys', async () => {
    await waitFor(async () => (await readAccounting(spool)).length >= 4001, 10000, 'accounting lines');
    const line = (await readAccounting(spool)).find((l) => l.recipient === 'bytes@example.org')!;
    assert.deepEqual(Object.keys(line).sort(), [
      'attempts',
      'category',
      'delay',
      'destination',
      'host',
      'outcome',
      'queueId',
      'recipient',
      'reply',
      'sender',
      'time',
      'tlsPolicy',
      'tlsResult',
    ]);
    assert.equal(line.outcome, 'delivered');
    assert.equal(line.attempts, 1);
    // Smarthost delivery: its tls mode applied (starttls-opportunistic here) and the session got through.
    assert.equal(line.tlsPolicy, 'smarthost');
    assert.equal(line.tlsResult, 'success');
  });

  test('the queue API reports an empty queue once everything is delivered', async () => {
    await waitFor(
      async () => ((await (await relay.http('/api/queue')).json()) as { messages: number }).messages === 0,
      10000,
      'empty queue',
    );
    const ready = await relay.http('/readyz');
    assert.equal(ready.status, 200);
  });

  test('a sender outside the sending domains is refused with 550 5.7.1 and counted', async () => {
    const client = createTransport({ host: '127.0.0.1', port: relay.ports.smtp, ignoreTLS: true });
    await assert.rejects(
      client.sendMail({ envelope: { from: 'x@other.org', to: ['b@example.org'] }, raw: rawMessage('no') }),
      { responseCode: 550 },
    );
    assert.equal(
      await relay.metric('mailfleet_relay_smtp_rejections_total', {
        code: '550',
        reason: 'senderDomainNotAllowed',
      }),
      1,
    );
  });
});
