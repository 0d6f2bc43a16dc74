// The intake switch (config intake.open, policy/intake-switch.ts) on real relay processes: a
// rewritten config file closes the public listeners on reload (new sessions 421, MAIL FROM 421, a
// message ending DATA 451) while delivery and handoff receipt go on; the gauge
// mailfleet_relay_intake_open reads 0 only once nothing more can be acknowledged. Each test keeps
// a ledger (acknowledged, delivered, duplicates, lost = 0).
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import {
  deliveredIds,
  freePort,
  ledger,
  metricValue,
  rawMessage,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  submitMany,
  tempDir,
  waitFor,
  writeConfig,
  writeHandoffSecret,
  type RelayProcess,
} from '../helpers/relay/peers.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A hand-driven SMTP session: each call writes a line (or nothing) and returns the next reply. */
async function session(port: number): Promise<{ say(line?: string): Promise<string>; socket: Socket }> {
  const socket = createConnection(port, '127.0.0.1');
  let buffer = '';
  const waiting: (() => void)[] = [];
  const wake = () => waiting.splice(0).forEach((w) => w());
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    wake();
  });
  socket.on('close', wake);
  const reply = async (): Promise<string> => {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(buffer);
      if (m) {
        buffer = buffer.slice(m[0].length);
        return m[0];
      }
      if (socket.destroyed) return 'closed';
      await new Promise<void>((r) => waiting.push(r));
    }
  };
  cleanups.push(async () => void socket.destroy());
  return {
    socket,
    say: (line) => {
      if (line !== undefined) socket.write(`${line}\r\n`);
      return reply();
    },
  };
}

/** Rewrites the relay's config with intake.open and waits until the relay applied it. */
async function setIntake(relay: RelayProcess, config: Record<string, unknown>, open: boolean): Promise<void> {
  const line = open ? '"intake opened"' : '"intake closed"';
  const before = relay.logs.filter((l) => l.includes(line)).length;
  await writeConfig(relay.configPath, { ...config, intake: { open } });
  await waitFor(() => relay.logs.filter((l) => l.includes(line)).length > before, 10_000, line);
}

async function start(config: Record<string, unknown>): Promise<RelayProcess> {
  const relay = await startRelay(config);
  cleanups.push(() => relay.stop('SIGKILL'));
  return relay;
}

describe('relay intake switch', () => {
  test('closed: new sessions and MAIL FROM get 421, queued mail is still delivered, a draining peer still hands its queue over; opened again: mail is accepted', async () => {
    const upstream = await startScripted();
    upstream.onRcpt = () => ({ code: 451, message: '4.4.1 destination down' });
    const dir = await tempDir('intake');
    const spools = { a: await tempDir('spoolA'), b: await tempDir('spoolB') };
    cleanups.push(
      () => upstream.stop(),
      () => removeDir(dir),
      () => removeDir(spools.a),
      () => removeDir(spools.b),
    );
    const secretFile = await writeHandoffSecret(dir);
    const ports = { a: await freePort(), b: await freePort() };
    const retry = { firstRetry: '1s', maxBackoff: '2s', maxQueueLifetime: '1h' };
    const configA = relayConfig(spools.a, upstream.port, {
      retry,
      handoff: { host: '127.0.0.1', port: ports.a, secretFile, peers: [] },
    });
    const a = await start(configA);
    const b = await start(
      relayConfig(spools.b, upstream.port, {
        retry,
        handoff: { host: '127.0.0.1', port: ports.b, secretFile, peers: [`127.0.0.1:${ports.a}`] },
        drainTimeout: '30s',
      }),
    );
    const queuedOnA = await submitMany(a.ports.smtp, 20, 'a');
    const queuedOnB = await submitMany(b.ports.smtp, 10, 'b');
    assert.equal(queuedOnA.length, 20);
    assert.equal(queuedOnB.length, 10);
    assert.equal(await a.metric('mailfleet_relay_intake_open'), 1);

    const open = await session(a.ports.smtp);
    assert.match(await open.say(), /^220 /);
    assert.match(await open.say('EHLO client.test'), /^250/);
    await setIntake(a, configA, false);
    assert.equal(await a.metric('mailfleet_relay_intake_open'), 0);
    // A session opened before the switch: its next transaction is refused and the session closes.
    assert.match(await open.say('MAIL FROM:<a@example.com>'), /^421 4\.3\.2 Intake closed/);
    const fresh = await session(a.ports.smtp);
    assert.match(await fresh.say(), /^421 4\.3\.2 Intake closed/);
    const refused = await sendMessage(a.ports.smtp, {
      from: 'a@example.com',
      to: ['x@example.org'],
      raw: rawMessage('refused'),
    });
    assert.equal(refused.ok, false);
    assert.equal(await a.metric('mailfleet_relay_smtp_rejections_total', { reason: 'intakeClosed' }), 3);

    // B drains: the handoff port of the closed relay still takes B's queue.
    const bExited = new Promise<number | null>((r) => b.proc.once('exit', (code) => r(code)));
    b.proc.kill('SIGTERM');
    assert.equal(await bExited, 0);
    assert.equal(await a.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' }), 10);

    // The destination recovers: the closed relay delivers its own queue and what B handed it.
    upstream.onRcpt = () => undefined;
    await waitFor(() => deliveredIds(upstream.received).size === 30, 30_000, 'all 30 delivered');
    await waitFor(
      async () => (await a.metric('mailfleet_relay_queue_oldest_message_age_seconds')) === 0,
      10_000,
      'empty',
    );
    const delivered = deliveredIds(upstream.received);
    const acknowledged = [...queuedOnA, ...queuedOnB];
    assert.deepEqual([...delivered.keys()].sort(), acknowledged.sort());
    assert.ok(
      [...delivered.values()].every((n) => n === 1),
      'each delivered once',
    );
    assert.equal(delivered.has('refused'), false);

    await setIntake(a, configA, true);
    assert.equal(await a.metric('mailfleet_relay_intake_open'), 1);
    const reopened = await sendMessage(a.ports.smtp, {
      from: 'a@example.com',
      to: ['x@example.org'],
      raw: rawMessage('reopened'),
    });
    assert.ok(reopened.ok, reopened.response);
    await waitFor(() => deliveredIds(upstream.received).has('reopened'), 10_000, 'the reopened mail');
    ledger('intake closed with a queue and a handoff', {
      acknowledged: acknowledged.length,
      handedOver: 10,
      delivered: delivered.size,
      duplicates: 0,
      lost: acknowledged.filter((id) => !delivered.has(id)).length,
    });
  });

  test('a message still in DATA when the intake closes gets 451 at its end and is not queued', async () => {
    const upstream = await startScripted();
    const spool = await tempDir('spool');
    cleanups.push(
      () => upstream.stop(),
      () => removeDir(spool),
    );
    const config = relayConfig(spool, upstream.port);
    const relay = await start(config);
    const s = await session(relay.ports.smtp);
    await s.say();
    await s.say('EHLO client.test');
    assert.match(await s.say('MAIL FROM:<a@example.com>'), /^250/);
    assert.match(await s.say('RCPT TO:<b@example.org>'), /^250/);
    assert.match(await s.say('DATA'), /^354/);
    s.socket.write(rawMessage('in-data').replace(/\r?\n/g, '\r\n'));
    await setIntake(relay, config, false);
    assert.match(await s.say('.'), /^451 4\.3\.2 Intake closed, message not queued/);
    assert.equal(await relay.metric('mailfleet_relay_messages_received_total'), 0);
    assert.equal(await relay.metric('mailfleet_relay_queue_oldest_message_age_seconds'), 0);
    assert.equal(upstream.received.length, 0);
  });

  test('senders busy while the intake closes: every acknowledged message is delivered once, none is acknowledged after the gauge read 0', async () => {
    const upstream = await startScripted();
    const spool = await tempDir('spool');
    cleanups.push(
      () => upstream.stop(),
      () => removeDir(spool),
    );
    const config = relayConfig(spool, upstream.port);
    const relay = await start(config);
    let stop = false;
    const acknowledged: string[] = [];
    let refused = 0;
    const sender = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const r = await sendMessage(relay.ports.smtp, {
          from: 'a@example.com',
          to: [`r${n}-${i}@example.org`],
          raw: rawMessage(`busy-${n}-${i}`),
        });
        if (r.ok) acknowledged.push(`busy-${n}-${i}`);
        else refused++;
      }
    };
    const senders = Array.from({ length: 6 }, (_, n) => sender(n));
    await waitFor(() => acknowledged.length >= 100, 30_000, '100 acknowledged before the switch');
    const closing = setIntake(relay, config, false);
    // Scrape as the operator does until the gauge reads 0; remember how many messages the relay had
    // acknowledged at that scrape.
    let receivedAtClosedReading = -1;
    let scrapes = 0;
    while (receivedAtClosedReading < 0) {
      const text = await (await fetch(`${relay.base}/metrics`)).text();
      scrapes++;
      if (metricValue(text, 'mailfleet_relay_intake_open') === 0)
        receivedAtClosedReading = metricValue(text, 'mailfleet_relay_messages_received_total');
    }
    await closing;
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(senders);
    const received = await relay.metric('mailfleet_relay_messages_received_total');
    assert.equal(received, receivedAtClosedReading, 'nothing acknowledged after the gauge read 0');
    assert.equal(received, acknowledged.length);
    assert.ok(refused > 0, 'senders were refused once the intake closed');
    await waitFor(
      () => deliveredIds(upstream.received).size === acknowledged.length,
      30_000,
      'all delivered',
    );
    const delivered = deliveredIds(upstream.received);
    assert.ok(
      [...delivered.values()].every((n) => n === 1),
      'each delivered once',
    );
    assert.deepEqual([...delivered.keys()].sort(), [...acknowledged].sort());
    ledger('senders busy while the intake closes', {
      acknowledged: acknowledged.length,
      refusedAfterSwitch: refused,
      scrapesUntilClosed: scrapes,
      delivered: delivered.size,
      duplicates: 0,
      lost: acknowledged.filter((id) => !delivered.has(id)).length,
    });
  });
});
