// The events webhook through a real relay process and a real HTTP receiver: kill -9 mid-batch,
// a receiver down for a long while (short backoff config), and the outbox's bound on disk.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect } from 'node:net';
import {
  readAccounting,
  relayConfig,
  removeDir,
  startRelay,
  startSink,
  submitMany,
  tempDir,
  waitFor,
  type RelayProcess,
} from '../helpers/relay/peers.ts';
import { startEventsEndpoint } from '../helpers/events-receiver.ts';
import { cleanupsAfterFile } from '../helpers/cleanups.ts';
import type { MailEvent } from '../../relay/src/events/event.ts';

const cleanups = cleanupsAfterFile();

async function setup(over: Record<string, unknown>) {
  const sink = await startSink();
  const spool = await tempDir('spool');
  const { receiver, events } = await startEventsEndpoint(spool, over);
  cleanups.push(
    () => sink.stop(),
    () => receiver.stop(),
    () => removeDir(spool),
  );
  const config = relayConfig(spool, sink.port, {
    accounting: { file: join(spool, 'accounting.jsonl') },
    events,
  });
  return { sink, spool, receiver, config };
}

const queueEmpty = async (relay: RelayProcess) =>
  ((await (await relay.http('/api/queue')).json()) as { messages: number }).messages === 0;

/** The recipients of the delivered events, in the order received (first time each id was seen). */
function deliveredOrder(events: MailEvent[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of events)
    if (e.type === 'delivered' && !seen.has(e.id)) {
      seen.add(e.id);
      out.push(e.recipient ?? '');
    }
  return out;
}

/** Every distinct event (type, recipient) has one id: a duplicate is the same event sent again. */
function assertDuplicatesShareIds(events: MailEvent[]): void {
  const ids = new Map<string, Set<string>>();
  for (const e of events) {
    const key = `${e.type} ${e.recipient}`;
    ids.set(key, (ids.get(key) ?? new Set()).add(e.id));
  }
  for (const [key, set] of ids) assert.equal(set.size, 1, `${key} was sent under ${set.size} ids`);
}

describe('relay events webhook', () => {
  test('kill -9 mid-batch, then restart: every delivered event arrives, duplicates only under the same id', async () => {
    const { spool, receiver, config } = await setup({ batchSize: 10 });
    const first = await startRelay(config);
    cleanups.push(() => first.stop('SIGKILL'));
    // The receiver takes the first batches, then holds one open: the relay dies waiting for it.
    const acked = submitMany(first.ports.smtp, 120, 'kill', (i) => `r${i}@example.org`, 4);
    await waitFor(() => receiver.events.length >= 20, 30000, 'the first batches');
    receiver.mode = 'hold';
    const held = receiver.requests;
    await waitFor(() => receiver.requests > held, 30000, 'a batch held open');
    await first.stop('SIGKILL');
    const acknowledged = await acked;
    receiver.mode = 200;
    const second = await startRelay(config, first.configPath);
    cleanups.push(() => second.stop());
    await waitFor(() => queueEmpty(second), 60000, 'the queue to drain');
    const recipients = (await readAccounting(spool))
      .filter((r) => r.outcome === 'delivered')
      .map((r) => String(r.recipient));
    const expected = new Set(recipients);
    await waitFor(
      () => new Set(deliveredOrder(receiver.events)).size >= expected.size,
      30000,
      'every delivered event',
    );
    await waitFor(
      async () => (await second.metric('mailfleet_relay_events_outbox_events')) === 0,
      10000,
      'an empty outbox',
    );
    assert.ok(acknowledged.length > 0);
    assert.ok(expected.size >= acknowledged.length, 'every acknowledged message was delivered');
    assert.deepEqual(new Set(deliveredOrder(receiver.events)), expected);
    assertDuplicatesShareIds(receiver.events);
    assert.ok(
      receiver.events.length > new Set(receiver.events.map((e) => e.id)).size,
      'the held batch came again after the restart (at least once, not exactly once)',
    );
    assert.equal(receiver.badSignatures, 0);
  });

  test('a receiver down for a long while, then back: the backlog drains in order, the age is reported', async () => {
    const { spool, receiver, config } = await setup({ batchSize: 7 });
    receiver.mode = 503;
    const relay = await startRelay(config);
    cleanups.push(() => relay.stop());
    const acknowledged = await submitMany(relay.ports.smtp, 40, 'down', (i) => `d${i}@example.org`, 2);
    assert.equal(acknowledged.length, 40);
    await waitFor(() => queueEmpty(relay), 30000, 'mail delivered while the receiver is down');
    // Many retries at the short maxBackoff stand for an hour of them.
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_events_failures_total', { reason: 'http_503' })) >= 8,
      30000,
      'eight failed attempts',
    );
    assert.equal(await relay.metric('mailfleet_relay_events_outbox_events'), 40);
    assert.ok((await relay.metric('mailfleet_relay_events_oldest_age_seconds')) >= 2);
    assert.equal(receiver.events.length, 0);
    receiver.mode = 200;
    await waitFor(() => receiver.events.length >= 40, 30000, 'the backlog');
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_events_oldest_age_seconds')) === 0,
      10000,
      'age 0',
    );
    const accountingOrder = (await readAccounting(spool))
      .filter((r) => r.outcome === 'delivered')
      .map((r) => String(r.recipient));
    assert.deepEqual(deliveredOrder(receiver.events), accountingOrder, 'in the order the outcomes happened');
    assert.equal(receiver.events.length, 40, 'no duplicates when nothing crashed');
    assert.equal(await relay.metric('mailfleet_relay_events_sent_total'), 40);
  });

  test('bounded on disk: with the receiver down, the oldest events are dropped and counted, mail goes on', async () => {
    const maxBytes = 64 * 1024;
    const { sink, spool, receiver, config } = await setup({ batchSize: 50, maxBytes });
    receiver.mode = 503;
    const relay = await startRelay(config);
    cleanups.push(() => relay.stop());
    const acknowledged = await submitMany(relay.ports.smtp, 400, 'full', (i) => `f${i}@example.org`, 4);
    assert.equal(acknowledged.length, 400, 'a full outbox never refuses mail');
    await waitFor(() => queueEmpty(relay), 60000, 'all mail delivered');
    assert.equal((await sink.messages()).length, 400);
    const dropped = await relay.metric('mailfleet_relay_events_dropped_total', { reason: 'outbox_full' });
    const waiting = await relay.metric('mailfleet_relay_events_outbox_events');
    assert.ok(dropped > 0, 'some events were dropped');
    assert.ok((await relay.metric('mailfleet_relay_events_outbox_bytes')) <= maxBytes);
    assert.equal(dropped + waiting, 400, 'every event is either waiting or counted as dropped');
    receiver.mode = 200;
    await waitFor(() => receiver.events.length >= waiting, 30000, 'what was kept');
    const order = (await readAccounting(spool))
      .filter((r) => r.outcome === 'delivered')
      .map((r) => String(r.recipient));
    assert.deepEqual(deliveredOrder(receiver.events), order.slice(dropped), 'the newest were kept, in order');
  });
});

test('a suppressed recipient: its event is on disk before the 550, so a relay killed at the reply still sends it', async () => {
  const { receiver, config } = await setup({});
  receiver.mode = 503;
  const first = await startRelay(config);
  cleanups.push(() => first.stop('SIGKILL'));
  const added = await first.http('/api/suppressions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ address: 'gone@example.org', reason: 'manual' }),
  });
  assert.equal(added.status, 201);
  // A raw SMTP dialog: the relay gets SIGKILL in the same tick the client reads the 550.
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(first.ports.smtp, '127.0.0.1');
    const script = ['EHLO client.test', 'MAIL FROM:<app@example.com>', 'RCPT TO:<gone@example.org>'];
    let buffer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line.startsWith('550')) {
          first.proc.kill('SIGKILL');
          socket.destroy();
          return resolve(line);
        }
        if (/^\d{3} /.test(line)) {
          const next = script.shift();
          if (next === undefined) return reject(new Error(`unexpected: ${line}`));
          socket.write(`${next}\r\n`);
        }
      }
    });
    socket.on('error', reject);
  });
  assert.match(reply, /^550 5\.\d\.\d Recipient suppressed/);
  await new Promise((r) => first.proc.once('exit', r));
  receiver.mode = 200;
  const second = await startRelay(config, first.configPath);
  cleanups.push(() => second.stop());
  await waitFor(() => receiver.events.some((e) => e.type === 'suppressed'), 20000, 'the suppressed event');
  const [event] = receiver.events.filter((e) => e.type === 'suppressed');
  assert.deepEqual([event?.recipient, event?.sendingDomain], ['gone@example.org', 'example.com']);
  assert.equal(receiver.badSignatures, 0);
});
