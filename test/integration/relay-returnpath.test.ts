// The return path end to end through a relay process: signed VERP envelope senders per recipient,
// DKIM still signed for the sending domain (d= is the From domain, never the return-path domain).
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { generateDkimKey, publicKeyRecord } from '../../relay/src/dkim/keys.ts';
import { verifyVerp } from '../../relay/src/returnpath/verp.ts';
import {
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

before(async () => {
  upstream = await startScripted();
  cleanups.push(() => upstream.stop());
  const dir = await tempDir('returnpath');
  cleanups.push(() => removeDir(dir));
  const rsa = generateDkimKey('rsa-sha256');
  await writeFile(join(dir, 'rsa.pem'), rsa);
  await writeFile(join(dir, 'verp.key'), `${KEY}\n`);
  dns.set('s1._domainkey.example.com', publicKeyRecord(rsa));
  relay = await startRelay(
    relayConfig(join(dir, 'spool'), upstream.port, {
      sendingDomains: [
        {
          domain: 'example.com',
          returnPath: 'bounces.example.com',
          dkim: { selector: 's1', algorithm: 'rsa-sha256', keyFile: join(dir, 'rsa.pem') },
        },
        { domain: 'plain.example' },
      ],
      returnPath: { keyFile: join(dir, 'verp.key'), listener: { host: '127.0.0.1', port: 0 } },
    }),
  );
  cleanups.push(() => relay.stop());
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
