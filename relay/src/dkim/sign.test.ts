import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { relaxedBody, relaxedHeader } from './canonicalize.ts';
import { generateDkimKey, publicKeyRecord } from './keys.ts';
import type { DkimAlgorithm } from './sign.ts';
import { loadPrivateKey, signMessage } from './sign.ts';

const message = Buffer.from(
  [
    'From: Shop <orders@example.com>',
    'To: alice@example.net',
    'Subject: Your order  #1234',
    '\tis on its way',
    'Date: Mon, 30 Nov 2026 10:00:00 +0000',
    'Message-ID: <1234@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello Alice,  ',
    '',
    'your parcel ships today. \u00e9',
    '',
    '',
  ].join('\r\n'),
  'latin1',
);

async function verify(signed: Buffer, record: string) {
  const result = await dkimVerify(signed, {
    resolver: async (name: string, type: string) => {
      if (type === 'TXT' && name === 'sel._domainkey.example.com') return [[record]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
  });
  return result.results[0]!;
}

describe('relaxed canonicalization (RFC 6376 §3.4.5 example)', () => {
  test('headers: lower-case name, unfolded, whitespace collapsed', () => {
    assert.equal(relaxedHeader('A: X'), 'a:X');
    assert.equal(relaxedHeader('B : Y\t\r\n\tZ  '), 'b:Y Z');
  });
  test('body: trailing whitespace and empty lines removed', () => {
    assert.equal(relaxedBody(' C \r\nD \t E\r\n\r\n\r\n'), ' C\r\nD E\r\n');
  });
  test('an empty body canonicalizes to nothing', () => {
    assert.equal(relaxedBody(''), '');
    assert.equal(relaxedBody('\r\n\r\n'), '');
  });
  test('body: the same as canonicalizing line by line (RFC 6376 §3.4.4 as written), for any body', () => {
    const byLines = (body: string) => {
      const lines = body.split('\r\n');
      if (lines.at(-1) === '') lines.pop();
      const canonical = lines.map((line) => line.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
      while (canonical.at(-1) === '') canonical.pop();
      return canonical.length === 0 ? '' : `${canonical.join('\r\n')}\r\n`;
    };
    const body = fc
      .array(fc.constantFrom('\r\n', ' ', '\t', 'a', '\r', '\n', ' \r\n', '\t\r\n', 'é'), { maxLength: 40 })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(body, (b) => assert.equal(relaxedBody(b), byLines(b))),
      { numRuns: 5000 },
    );
  });
});

describe('DKIM signatures verify with an independent verifier (mailauth)', () => {
  for (const algorithm of ['rsa-sha256', 'ed25519-sha256'] as DkimAlgorithm[]) {
    const pem = generateDkimKey(algorithm);
    const key = {
      domain: 'example.com',
      selector: 'sel',
      algorithm,
      privateKey: loadPrivateKey(pem, algorithm),
    };
    const record = publicKeyRecord(pem);

    test(`${algorithm}: the signature passes`, async () => {
      const result = await verify(signMessage(message, key), record);
      assert.equal(result.status.result, 'pass', JSON.stringify(result.status));
      assert.equal(result.signingDomain, 'example.com');
      assert.equal(result.algo, algorithm);
    });
    test(`${algorithm}: From is over-signed, so a second From added later fails`, async () => {
      const signed = signMessage(message, key);
      const tampered = Buffer.concat([
        signed.subarray(0, signed.indexOf('\r\n\r\n') + 2),
        Buffer.from('From: evil@evil.example\r\n'),
        signed.subarray(signed.indexOf('\r\n\r\n') + 2),
      ]);
      const result = await verify(tampered, record);
      assert.equal(result.status.result, 'fail');
    });
    test(`${algorithm}: a changed body fails`, async () => {
      const signed = signMessage(message, key);
      const result = await verify(
        Buffer.from(signed.toString('latin1').replace('today', 'never'), 'latin1'),
        record,
      );
      // mailauth reports a body hash mismatch as "neutral" with the reason; either way not a pass.
      assert.notEqual(result.status.result, 'pass');
      assert.match(JSON.stringify(result.status), /body hash/i);
    });
    test(`${algorithm}: whitespace changes that relaxed canonicalization ignores still pass`, async () => {
      const signed = signMessage(message, key);
      const rewrapped = Buffer.from(
        signed.toString('latin1').replace('Hello Alice,  ', 'Hello Alice,'),
        'latin1',
      );
      assert.equal((await verify(rewrapped, record)).status.result, 'pass');
    });
  }
  test('a key of the wrong type for the algorithm is refused', () => {
    assert.throws(() => loadPrivateKey(generateDkimKey('ed25519-sha256'), 'rsa-sha256'), /needs rsa/);
  });
  test('the ed25519 record carries the raw 32-byte key', () => {
    const record = publicKeyRecord(generateDkimKey('ed25519-sha256'));
    const p = /p=([A-Za-z0-9+/=]+)/.exec(record)![1]!;
    assert.equal(Buffer.from(p, 'base64').length, 32);
    assert.match(record, /^v=DKIM1; k=ed25519; p=/);
  });
});
