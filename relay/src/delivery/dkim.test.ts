import assert from 'node:assert/strict';
import { knownCleanLines, rememberCleanLines } from '../security/bare-newline.ts';
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
      signed.body.toString('latin1'),
      /^DKIM-Signature: v=1;\r\n\ta=ed25519-sha256;[\s\S]*d=example\.com;\r\n\ts=s1;/,
    );
  });
  test('falls back to the envelope sender domain, and leaves unknown domains unsigned', () => {
    const { keyring } = DkimKeyring.load(domains);
    assert.equal(keyring.sign(msg('a@other.example'), 'b@example.com').domain, 'example.com');
    const unsigned = keyring.sign(msg('a@other.example'), 'b@nokey.example');
    assert.equal(unsigned.domain, undefined);
    assert.equal(unsigned.body.toString('latin1'), msg('a@other.example').toString('latin1'));
  });
  test('a signed message is known to have clean line ends only when the message was', () => {
    const { keyring } = DkimKeyring.load(domains);
    const checked = msg('a@example.com');
    rememberCleanLines(checked);
    assert.equal(knownCleanLines(keyring.sign(checked, '').body), true);
    assert.equal(knownCleanLines(keyring.sign(msg('a@example.com'), '').body), false);
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
