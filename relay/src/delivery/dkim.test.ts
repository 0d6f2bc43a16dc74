import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { generateDkimKey } from '../dkim/keys.ts';
import type { SendingDomainConfig } from '../config/types.ts';
import { DkimKeyring, headerFromDomain } from './dkim.ts';

const dir = mkdtempSync(join(tmpdir(), 'mailfleet-dkim-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const msg = (from: string) => Buffer.from(`From: ${from}\r\nSubject: x\r\n\r\nbody\r\n`, 'latin1');

describe('headerFromDomain', () => {
  const cases: [string, string][] = [
    ['Shop <orders@Example.COM>', 'example.com'],
    ['orders@example.com', 'example.com'],
    ['"a@b" <x@shop.example>', 'shop.example'],
  ];
  for (const [from, domain] of cases) test(from, () => assert.equal(headerFromDomain(msg(from)), domain));
  test('a folded From', () =>
    assert.equal(headerFromDomain(Buffer.from('From: Shop\r\n <o@f.example>\r\n\r\n')), 'f.example'));
  test('no From', () => assert.equal(headerFromDomain(Buffer.from('Subject: x\r\n\r\n')), ''));
});

describe('DkimKeyring', () => {
  const keyFile = join(dir, 'ed.pem');
  writeFileSync(keyFile, generateDkimKey('ed25519-sha256'));
  const withKey = (file: string): SendingDomainConfig => ({
    domain: 'example.com',
    suspended: false,
    dkim: { selector: 's1', algorithm: 'ed25519-sha256', keyFile: file },
  });
  const domains: SendingDomainConfig[] = [withKey(keyFile), { domain: 'nokey.example', suspended: false }];
  test('signs with the header From domain key, d= and s= as configured', () => {
    const { keyring, errors } = DkimKeyring.load(domains);
    assert.deepEqual(errors, []);
    const signed = keyring.sign(msg('a@example.com'), 'bounce@nokey.example');
    assert.equal(signed.domain, 'example.com');
    assert.match(
      signed.field!.toString('latin1'),
      /^DKIM-Signature: v=1;\r\n\ta=ed25519-sha256;[\s\S]*d=example\.com;\r\n\ts=s1;/,
    );
  });
  test('falls back to the envelope sender domain, and leaves unknown domains unsigned', () => {
    const { keyring } = DkimKeyring.load(domains);
    assert.equal(keyring.sign(msg('a@other.example'), 'b@example.com').domain, 'example.com');
    const unsigned = keyring.sign(msg('a@other.example'), 'b@nokey.example');
    assert.equal(unsigned.domain, undefined);
    assert.equal(unsigned.field, undefined);
  });
  test('signing leaves the message as it is: the field alone is new, one header field ending in CRLF', () => {
    const { keyring } = DkimKeyring.load(domains);
    const message = msg('a@example.com');
    const before = Buffer.from(message);
    const { field } = keyring.sign(message, '');
    assert.deepEqual(message, before);
    const text = field!.toString('latin1');
    assert.match(text, /^DKIM-Signature: /);
    assert.ok(text.endsWith('\r\n'));
    assert.doesNotMatch(text.slice(0, -2), /\r\n(?![ \t])/, 'continuation lines only');
  });
  test('a message in chunks gets the field its bytes in one Buffer get, with the same key choice', async () => {
    const { keyring } = DkimKeyring.load(domains);
    const now = 1_796_000_000;
    const cases: [string, string, string | undefined][] = [
      ['a@example.com', 'bounce@nokey.example', 'example.com'],
      ['a@other.example', 'b@example.com', 'example.com'],
      ['a@other.example', 'b@nokey.example', undefined],
    ];
    for (const [from, envelopeFrom, domain] of cases) {
      const message = msg(from);
      // Split inside the From field and inside the empty line.
      const split = [message.subarray(0, 8), message.subarray(8, message.indexOf('\r\n\r\n') + 3)];
      const rest = message.subarray(split[0]!.length + split[1]!.length);
      const chunks = async function* () {
        yield* [...split, rest];
      };
      const streamed = await keyring.signChunks({ chunks }, envelopeFrom, now);
      const whole = keyring.sign(message, envelopeFrom, now);
      assert.equal(streamed.domain, domain, from);
      assert.deepEqual(streamed, whole, from);
    }
  });
  test('a broken key file keeps the previous key and is reported', () => {
    const { keyring: first } = DkimKeyring.load(domains);
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, 'not a key');
    const { keyring, errors } = DkimKeyring.load([withKey(broken)], first);
    assert.equal(errors.length, 1);
    assert.equal(keyring.sign(msg('a@example.com'), '').domain, 'example.com');
  });
  test('a key of the wrong type for the algorithm is an error', () => {
    const rsa = join(dir, 'rsa.pem');
    writeFileSync(rsa, generateDkimKey('rsa-sha256'));
    const { errors } = DkimKeyring.load([withKey(rsa)]);
    assert.match(errors[0]!.error, /needs ed25519/);
  });
});
