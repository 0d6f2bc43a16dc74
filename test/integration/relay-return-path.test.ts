// The return path end to end through a relay process: signed VERP envelope senders per recipient,
// DKIM still signed for the sending domain (d= is the From domain, never the return-path domain),
// and the feedback loop. The relay's smarthost is a real Postfix, which accepts everything and
// delivers to a scripted remote; when the remote refuses a recipient, Postfix sends its own
// RFC 3464 DSN to the VERP sender, which its transport map routes to the relay's return-path
// listener (the MX of bounces.example.com), where it is counted as an async hard bounce.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { generateDkimKey, publicKeyRecord } from '../../relay/src/dkim/keys.ts';
import { verifyVerp } from '../../relay/src/return-path/verp.ts';
import { parseRelayMetrics, poolMeasurement } from '../../operator/src/scrape/relay-metrics.ts';
import { decideSuspension } from '../../operator/src/desired/bounce.ts';
import { withDefaults } from '../../operator/src/api/defaults.ts';
import { NOW, sendingDomain } from '../helpers/operator/fixtures.ts';
import { startPostfix } from '../helpers/relay/postfix.ts';
import {
  freePort,
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

const KEY = 'verp-key-for-tests-0123456789';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let upstream: ScriptedUpstream;
let relay: RelayProcess;
const dns = new Map<string, string>();
let spoolDir: string;

before(async () => {
  upstream = await startScripted();
  cleanups.push(() => upstream.stop());
  // The remote mailbox provider: accepts from Postfix, but "gone" mailboxes do not exist.
  upstream.onRcpt = (to) =>
    to.startsWith('gone')
      ? { code: 550, message: `5.1.1 <${to}>: Recipient address rejected: User unknown` }
      : undefined;
  const dir = await tempDir('returnpath');
  chmodSync(dir, 0o755); // Postfix's unprivileged daemons must traverse it
  cleanups.push(() => removeDir(dir));
  spoolDir = join(dir, 'spool');
  const rsa = generateDkimKey('rsa-sha256');
  await writeFile(join(dir, 'rsa.pem'), rsa);
  await writeFile(join(dir, 'verp.key'), `${KEY}\n`);
  dns.set('s1._domainkey.example.com', publicKeyRecord(rsa));
  const postfixPort = await freePort();
  relay = await startRelay(
    relayConfig(spoolDir, postfixPort, {
      sendingDomains: [
        {
          domain: 'example.com',
          returnPath: 'bounces.example.com',
          dkim: { selector: 's1', algorithm: 'rsa-sha256', keyFile: join(dir, 'rsa.pem') },
        },
        { domain: 'plain.example' },
      ],
      returnPath: { keyFile: join(dir, 'verp.key'), listener: { host: '127.0.0.1', port: 0 } },
      accounting: { file: join(spoolDir, 'accounting.jsonl') },
    }),
  );
  cleanups.push(() => relay.stop());
  const postfix = startPostfix({
    dir: join(dir, 'postfix'),
    port: postfixPort,
    relayhost: `[127.0.0.1]:${upstream.port}`,
    transports: { 'bounces.example.com': `smtp:[127.0.0.1]:${relay.ports.returnPath}` },
  });
  cleanups.push(async () => postfix.stop());
});

function message(from: string, id: string): string {
  return (
    `From: Shop <${from}>\r\nTo: list@example.org\r\nSubject: verp ${id}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n` +
    `Message-ID: <${id}@relay.test>\r\n\r\nbody ${id}\r\n`
  );
}

async function deliveredCopies(from: string, to: string[], id: string) {
  const r = await sendMessage(relay.ports.smtp, { from, to, raw: message(from, id) });
  assert.ok(r.ok, r.response);
  const copies = () => upstream.received.filter((m) => m.raw.includes(`body ${id}`));
  await waitFor(
    () => copies().reduce((n, m) => n + m.to.length, 0) === to.length,
    10000,
    `delivery of ${id}`,
  );
  return copies();
}

describe('return path with signed VERP', () => {
  test('each recipient gets its own transaction with a VERP sender that verifies to it', async () => {
    const to = ['ann@example.org', 'bob@example.net', 'cy@example.org'];
    const copies = await deliveredCopies('news@example.com', to, 'v1');
    assert.equal(copies.length, 3, 'one transaction per recipient');
    const queueIds = new Set<string>();
    for (const copy of copies) {
      assert.equal(copy.to.length, 1);
      assert.match(copy.from, /@bounces\.example\.com$/);
      const verdict = verifyVerp(Buffer.from(KEY), copy.from, (rp) =>
        rp === 'bounces.example.com' ? ['example.com'] : [],
      );
      assert.ok(verdict.ok, copy.from);
      assert.equal(verdict.fields.recipient, copy.to[0]);
      assert.equal(verdict.fields.sendingDomain, 'example.com');
      queueIds.add(verdict.fields.queueId);
    }
    assert.equal(queueIds.size, 1, 'all copies name the same message');
  });
  test('the DKIM signature stays on the sending domain and verifies', async () => {
    const [copy] = await deliveredCopies('news@example.com', ['dee@example.org'], 'v2');
    const [result] = (
      await dkimVerify(Buffer.from(copy!.raw, 'latin1'), {
        resolver: async (name: string, type: string) => {
          const record = dns.get(name);
          if (type === 'TXT' && record) return [[record]];
          throw Object.assign(new Error(`no ${type} for ${name}`), { code: 'ENOTFOUND' });
        },
      })
    ).results;
    assert.equal(result?.status.result, 'pass', JSON.stringify(result?.status));
    assert.equal(result?.signingDomain, 'example.com');
  });
  test('a sending domain without a return path keeps its sender and one transaction', async () => {
    const copies = await deliveredCopies('news@plain.example', ['ann@example.org', 'bob@example.org'], 'v3');
    assert.equal(copies.length, 1);
    assert.equal(copies[0]!.from, 'news@plain.example');
  });
});

const verify = (address: string) =>
  verifyVerp(Buffer.from(KEY), address, (rp) => (rp === 'bounces.example.com' ? ['example.com'] : []));

describe('the return-path listener', () => {
  test("a recipient the remote refuses after accepting: Postfix's DSN is counted as an async hard bounce", async () => {
    const labels = { sending_domain: 'example.com', kind: 'hard-bounce', category: 'bad-mailbox' };
    const before = await relay.metric('mailfleet_relay_feedback_reports_total', labels);
    const r = await sendMessage(relay.ports.smtp, {
      from: 'news@example.com',
      to: ['gone@example.org'],
      raw: message('news@example.com', 'late1'),
    });
    assert.ok(r.ok, r.response);
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_feedback_reports_total', labels)) > before,
      30000,
      'the DSN counted',
    );
    assert.equal(
      (await relay.metric('mailfleet_relay_recipients_delivered_total', { sending_domain: 'example.com' })) >
        0,
      true,
      'the relay itself delivered it: Postfix said 250',
    );
    const lines = await readAccounting(spoolDir);
    const line = lines.find((l) => l.outcome === 'feedback' && l.recipient === 'gone@example.org');
    assert.ok(line, JSON.stringify(lines.slice(-3)));
    assert.equal(line.kind, 'hard-bounce');
    assert.equal(line.status, '5.1.1');
    assert.equal(line.sendingDomain, 'example.com');
    assert.equal(line.source, 'dsn');
    const delivered = lines.find((l) => l.outcome === 'delivered' && l.recipient === 'gone@example.org');
    assert.equal(line.queueId, delivered?.queueId, 'the bounce names the message it is about');
    // The async hard bounce suppressed the recipient for the whole pool: the next RCPT is refused.
    const listed = (await (await relay.http('/api/suppressions?address=gone@example.org')).json()) as {
      entries: { scope: string; reason: string; source: string; messageId: string }[];
    };
    assert.deepEqual(
      listed.entries.map((e) => [e.scope, e.reason, e.source, e.messageId]),
      [['*', 'hard-bounce', 'dsn', line.queueId]],
    );
    const again = await sendMessage(relay.ports.smtp, {
      from: 'news@example.com',
      to: ['gone@example.org'],
      raw: message('news@example.com', 'late2'),
    });
    assert.equal(again.ok, false);
    assert.match(again.response, /^550 5\.1\.1 Recipient suppressed/);
  });

  const refusals: [string, string, string][] = [
    ['a plain mailbox on the return-path domain', 'postmaster@bounces.example.com', 'not-verp'],
    [
      'a VERP address with a forged signature',
      'bnc-aaaaaaaaaaaaa-miqx3k2a0001-ann=example.org@bounces.example.com',
      'bad-signature',
    ],
    ['a domain that is no return path (never a relay)', 'ann@example.org', 'not-verp'],
  ];
  for (const [name, to, reason] of refusals) {
    test(`${name} is refused with 550 5.1.1`, async () => {
      const before = await relay.metric('mailfleet_relay_return_path_refused_total', { reason });
      const r = await sendMessage(relay.ports.returnPath!, {
        from: '',
        to: [to],
        raw: 'Subject: x\r\n\r\nx\r\n',
      });
      assert.equal(r.ok, false);
      assert.match(r.response, /^550 5\.1\.1 /);
      assert.equal(await relay.metric('mailfleet_relay_return_path_refused_total', { reason }), before + 1);
    });
  }

  test('an ARF complaint (a real feedback-loop report) to a VERP address is counted as a complaint', async () => {
    const [copy] = await deliveredCopies('news@example.com', ['carol@example.org'], 'arf1');
    assert.ok(verify(copy!.from).ok);
    const arf = readFileSync(join(import.meta.dirname, '../fixtures/feedback/sisimai/arf-02.eml'));
    const labels = { sending_domain: 'example.com', kind: 'complaint', category: 'abuse' };
    const before = await relay.metric('mailfleet_relay_feedback_reports_total', labels);
    const r = await sendMessage(relay.ports.returnPath!, {
      from: 'feedback@yahoo.example',
      to: [copy!.from],
      raw: arf,
    });
    assert.ok(r.ok, r.response);
    assert.equal(await relay.metric('mailfleet_relay_feedback_reports_total', labels), before + 1);
    const line = (await readAccounting(spoolDir)).find(
      (l) => l.outcome === 'feedback' && l.recipient === 'carol@example.org',
    );
    assert.equal(line?.kind, 'complaint');
    // The complaint suppressed the recipient for the sending domain complained about.
    const listed = (await (await relay.http('/api/suppressions?address=carol@example.org')).json()) as {
      entries: { scope: string; reason: string; source: string }[];
    };
    assert.deepEqual(
      listed.entries.map((e) => [e.scope, e.reason, e.source]),
      [['example.com', 'complaint', 'arf']],
    );
  });

  test("the operator's autopilot reads these reports from the relay's /metrics and suspends over policy", async () => {
    // Runs after the DSN and ARF tests above: the relay has counted async hard bounces and a complaint.
    const metrics = await (await fetch(`${relay.base}/metrics`)).text();
    const m = poolMeasurement([[parseRelayMetrics(metrics, 1)]], 'example.com', 0);
    assert.ok(m && (m.asyncBounced ?? 0) >= 1 && (m.complaints ?? 0) >= 1, JSON.stringify(m));
    const domain = (policy: Record<string, unknown>) =>
      withDefaults(
        sendingDomain('example.com', {
          returnPath: 'bounces.example.com',
          bouncePolicy: { minMessages: 1, window: '1h', action: 'Suspend', ...policy },
        }),
      ).resource;
    const byComplaints = decideSuspension(domain({ maxBounceRate: 1 }), m, NOW);
    assert.equal(byComplaints.suspendNow, true);
    assert.equal(byComplaints.reason, 'ComplaintRateExceeded');
    const byBounces = decideSuspension(domain({ maxBounceRate: 0.01, maxComplaintRate: 1 }), m, NOW);
    assert.equal(byBounces.suspendNow, true);
    assert.equal(byBounces.reason, 'BounceRateExceeded');
    assert.match(byBounces.message, /bounced after delivery/);
  });
});
