// Direct delivery through MX records served by dnsmasq on a loopback port: preference order,
// next MX when the first refuses connections, A-record fallback, NXDOMAIN bounces.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  freePort,
  rawMessage,
  readAccounting,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startSink,
  tempDir,
  waitFor,
  type RelayProcess,
  type Sink,
} from '../helpers/relay/peers.ts';
import { startDnsmasq, type TestDns } from '../helpers/relay/dnsmasq.ts';

describe('relay direct delivery (MX)', () => {
  let dns: TestDns;
  let mx1: Sink;
  let mx2: Sink;
  let relay: RelayProcess;
  let spool: string;

  before(async () => {
    dns = await startDnsmasq([
      '--mx-host=mx.test,mx1.mx.test,10',
      '--mx-host=mx.test,mx2.mx.test,20',
      '--host-record=mx1.mx.test,127.0.0.2',
      '--host-record=mx2.mx.test,127.0.0.3',
      '--host-record=plain.test,127.0.0.3',
    ]);
    const smtpPort = await freePort('127.0.0.2');
    mx1 = await startSink({ host: '127.0.0.2', port: smtpPort });
    mx2 = await startSink({ host: '127.0.0.3', port: smtpPort });
    spool = await tempDir('spool');
    relay = await startRelay(
      relayConfig(spool, 0, {
        delivery: {
          mode: 'direct',
          dns: { servers: [dns.server] },
          directPort: smtpPort,
          connectTimeout: '2s',
        },
        dsn: { enabled: false },
      }),
    );
  });
  after(async () => {
    await relay?.stop();
    await mx1?.stop();
    await mx2?.stop();
    await dns?.stop();
    await removeDir(spool);
  });

  test('the most preferred MX gets the message', async () => {
    const r = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['x@mx.test'],
      raw: rawMessage('pref'),
    });
    assert.ok(r.ok, r.response);
    await waitFor(async () => (await mx1.messages()).length === 1, 10000, 'delivery to mx1');
    assert.equal((await mx2.messages()).length, 0);
  });

  test('when the first MX refuses connections the next MX gets it', async () => {
    await mx1.stop();
    const r = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['y@mx.test'],
      raw: rawMessage('next'),
    });
    assert.ok(r.ok);
    await waitFor(
      async () => (await mx2.messages()).some((m) => m.includes('Subject: test next')),
      10000,
      'mx2',
    );
    // The relay writes the accounting line once the upstream's 250 reaches it, after mx2 has the mail.
    await waitFor(
      async () => (await readAccounting(spool)).some((l) => l.recipient === 'y@mx.test'),
      10000,
      'the accounting line',
    );
    const line = (await readAccounting(spool)).find((l) => l.recipient === 'y@mx.test');
    assert.equal(line?.outcome, 'delivered');
    assert.match(String(line?.host), /^mx2\.mx\.test\[127\.0\.0\.3\]/);
  });

  test('a domain without MX is delivered to its A record (RFC 5321 §5.1)', async () => {
    const r = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['z@plain.test'],
      raw: rawMessage('plain'),
    });
    assert.ok(r.ok);
    await waitFor(
      async () => (await mx2.messages()).some((m) => m.includes('Subject: test plain')),
      10000,
      'plain.test',
    );
  });

  test('a domain that does not exist bounces as bad-domain', async () => {
    const r = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['q@nothere.test'],
      raw: rawMessage('nx'),
    });
    assert.ok(r.ok);
    await waitFor(
      async () => (await readAccounting(spool)).some((l) => l.recipient === 'q@nothere.test'),
      10000,
      'the bounce',
    );
    const line = (await readAccounting(spool)).find((l) => l.recipient === 'q@nothere.test');
    assert.equal(line?.outcome, 'bounced');
    assert.equal(line?.category, 'bad-domain');
  });
});
