// DKIM signing at delivery, checked by two independent verifiers (mailauth's dkimVerify with a
// DNS stub serving the public keys, and OpenDKIM's `opendkim -t` with TestPublicKeys): rsa-sha256 (2048) and ed25519-sha256, on mail that went through
// the relay to an upstream, and again after a key file was replaced (as a rotated Secret is).
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateDkimKey, publicKeyRecord } from '../../relay/src/dkim/keys.ts';
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
import { dkimVerifiers, type DkimVerifiers } from '../helpers/relay/dkim-verify.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let upstream: ScriptedUpstream;
let relay: RelayProcess;
let dir: string;
let verifiers: DkimVerifiers;
const verify = (raw: string) => verifiers.mailauth(raw);
const opendkimVerify = (raw: string, name: string) => verifiers.opendkim(raw, name);

function message(from: string, id: string, body = `Hello  \r\n\r\nbody ${id}\r\n`): string {
  return (
    `From: Shop <${from}>\r\nTo: b@example.org\r\nSubject: dkim ${id}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n` +
    `Message-ID: <${id}@relay.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${body}`
  );
}

/** `body` must contain `body <id>` (how the delivered copy is found). */
async function sendAndReceive(from: string, id: string, body?: string): Promise<string> {
  const r = await sendMessage(relay.ports.smtp, {
    from,
    to: ['b@example.org'],
    raw: message(from, id, body),
  });
  assert.ok(r.ok, r.response);
  await waitFor(
    () => upstream.received.some((m) => m.raw.includes(`body ${id}`)),
    10000,
    `delivery of ${id}`,
  );
  return upstream.received.find((m) => m.raw.includes(`body ${id}`))!.raw;
}

before(async () => {
  upstream = await startScripted();
  cleanups.push(() => upstream.stop());
  dir = await tempDir('dkim');
  verifiers = dkimVerifiers(dir);
  cleanups.push(() => removeDir(dir));
  const rsa = generateDkimKey('rsa-sha256');
  const ed = generateDkimKey('ed25519-sha256');
  await writeFile(join(dir, 'rsa.pem'), rsa);
  await writeFile(join(dir, 'ed.pem'), ed);
  verifiers.dns.set('s2048._domainkey.example.com', publicKeyRecord(rsa));
  verifiers.dns.set('ed1._domainkey.ed.example', publicKeyRecord(ed));
  relay = await startRelay(
    relayConfig(join(dir, 'spool'), upstream.port, {
      sendingDomains: [
        {
          domain: 'example.com',
          dkim: { selector: 's2048', algorithm: 'rsa-sha256', keyFile: join(dir, 'rsa.pem') },
        },
        {
          domain: 'ed.example',
          dkim: { selector: 'ed1', algorithm: 'ed25519-sha256', keyFile: join(dir, 'ed.pem') },
        },
        { domain: 'plain.example' },
      ],
    }),
  );
  cleanups.push(() => relay.stop());
});

describe('DKIM signing at delivery', () => {
  test('rsa-sha256: the signature verifies, relaxed/relaxed, From over-signed', async () => {
    const raw = await sendAndReceive('news@example.com', 'rsa1');
    const [result] = await verify(raw);
    assert.equal(result?.status.result, 'pass', JSON.stringify(result?.status));
    assert.equal(result?.signingDomain, 'example.com');
    assert.equal(result?.selector, 's2048');
    assert.match(raw, /^DKIM-Signature: v=1;\r\n\ta=rsa-sha256;\r\n\tc=relaxed\/relaxed;/);
    const h = /h=([^;]+);/.exec(raw.replace(/\r\n\t/g, ''))![1]!.split(':');
    assert.ok(h.filter((x) => x === 'from').length >= 2, `From over-signed: ${h.join(':')}`);
    assert.ok(raw.indexOf('DKIM-Signature:') < raw.indexOf('Received:'), 'signature above the trace header');
    const odk = opendkimVerify(raw, 'rsa1');
    assert.ok(odk.pass, odk.output);
    const tampered = opendkimVerify(raw.replace('body rsa1', 'body rsa!'), 'rsa1-tampered');
    assert.equal(tampered.pass, false, 'a changed body fails');
  });
  test('ed25519-sha256: the signature verifies', async () => {
    const raw = await sendAndReceive('news@ed.example', 'ed1');
    const [result] = await verify(raw);
    assert.equal(result?.status.result, 'pass', JSON.stringify(result?.status));
    assert.equal(result?.signingDomain, 'ed.example');
    assert.match(raw, /a=ed25519-sha256;/);
    const odk = opendkimVerify(raw, 'ed1');
    assert.ok(odk.pass, odk.output);
  });
  test('a body relaxed canonicalization changes in many places (runs, tabs, dot lines, trailing empty lines, 100 KB) verifies with both', async () => {
    // Lines the body hash takes as they are (single spaces) and lines it rewrites (indentation,
    // tabs, whitespace before the line end), past its 16 KiB scratch buffer; lines that start with
    // a dot (stuffed and unstuffed on the way); empty lines at the end, which the hash drops.
    const lines: string[] = [];
    for (let i = 0; i < 4000; i++)
      lines.push(
        i % 3 === 0
          ? `plain line ${i} with single spaces`
          : i % 3 === 1
            ? `  \t<td>  cell ${i}</td> \t`
            : `.dot ${i}`,
      );
    const body = `${lines.join('\r\n')}\r\nbody canon1\r\n\r\n \t\r\n\r\n`;
    const raw = await sendAndReceive('news@example.com', 'canon1', body);
    assert.ok(raw.length > 90_000, `a big body (${raw.length} bytes)`);
    const [result] = await verify(raw);
    assert.equal(result?.status.result, 'pass', JSON.stringify(result?.status));
    const odk = opendkimVerify(raw, 'canon1');
    assert.ok(odk.pass, odk.output);
  });
  test('a sending domain without a key is delivered unsigned', async () => {
    const raw = await sendAndReceive('news@plain.example', 'plain1');
    assert.doesNotMatch(raw, /DKIM-Signature/);
  });
  test('a replaced key file signs the next message with the new key', async () => {
    const next = generateDkimKey('rsa-sha256');
    const oldRecord = verifiers.dns.get('s2048._domainkey.example.com')!;
    // Kubernetes swaps a Secret volume's files by renaming; do the same.
    await writeFile(join(dir, 'rsa.pem.new'), next);
    await rename(join(dir, 'rsa.pem.new'), join(dir, 'rsa.pem'));
    const reloads = relay.logs.filter((l) => l.includes('"config reloaded"')).length;
    await waitFor(
      () => relay.logs.filter((l) => l.includes('"config reloaded"')).length > reloads,
      10000,
      'reload',
    );
    const raw = await sendAndReceive('news@example.com', 'rsa2');
    verifiers.dns.set('s2048._domainkey.example.com', publicKeyRecord(next));
    assert.equal((await verify(raw))[0]?.status.result, 'pass', 'verifies with the new public key');
    verifiers.dns.set('s2048._domainkey.example.com', oldRecord);
    assert.notEqual((await verify(raw))[0]?.status.result, 'pass', 'and not with the old one');
    verifiers.dns.set('s2048._domainkey.example.com', publicKeyRecord(next));
    assert.ok((await relay.metric('mailfleet_relay_dkim_signatures_total', { result: 'signed' })) >= 3);
  });
  test('an unparsable key file is rejected and the previous key keeps signing', async () => {
    await writeFile(join(dir, 'rsa.pem'), 'not a key\n');
    await waitFor(() => relay.logs.some((l) => l.includes('DKIM key not usable')), 10000, 'key error logged');
    const raw = await sendAndReceive('news@example.com', 'rsa3');
    assert.equal((await verify(raw))[0]?.status.result, 'pass', 'signed with the key in use before');
  });
});
