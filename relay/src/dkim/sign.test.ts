import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { relaxedBody, relaxedHeader } from './canonicalize.ts';
import { generateDkimKey, publicKeyRecord } from './keys.ts';
import type { DkimAlgorithm } from './sign.ts';
import { loadPrivateKey, signMessage, streamedSignatureField, type DkimKey } from './sign.ts';

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

/** A message read in the chunks given (strings, latin1), as the spool hands out a big one. */
async function* chunked(parts: readonly string[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield Buffer.from(part, 'latin1');
}

describe('a message signed from its chunks gets the field signMessage gives the same bytes', () => {
  // The header block of the message above; a body with a tab to split at.
  const header = message.subarray(0, message.indexOf('\r\n\r\n')).toString('latin1');
  const body = 'Hello Alice,  \r\n\r\n\tyour parcel \u00e9 ships today.\r\n';
  const whole = `${header}\r\n\r\n${body}`;
  const at = (message: string, ...offsets: number[]) =>
    [0, ...offsets, message.length].slice(1).map((end, i) => message.slice([0, ...offsets][i], end));
  const big = `${header}\r\n\r\n${'a line of text with  a run\t and  more\r\n'.repeat(8000)}.end\r\n\r\n`;
  const cases: [string, string[]][] = [
    ['the header block in the first chunk', at(whole, header.length + 10)],
    ['the header block split inside a field', at(whole, 12, 100)],
    ...[0, 1, 2, 3, 4].map((k): [string, string[]] => [
      `the empty line split after its byte ${k}`,
      at(whole, header.length + k),
    ]),
    ['the empty line over four chunks', at(whole, header.length + 1, header.length + 2, header.length + 3)],
    ['a body CRLF split between CR and LF', at(whole, whole.indexOf('  \r\n') + 3)],
    ['a whitespace run split in the body', at(whole, whole.indexOf('  \r\n') + 1)],
    ['a tab starting a chunk', at(whole, whole.indexOf('\tyour'))],
    [
      'trailing empty lines split between chunks',
      at(`${whole}\r\n \t\r\n\r\n`, whole.length + 2, whole.length + 5),
    ],
    ['an empty body', at(`${header}\r\n\r\n`, 20)],
    ['an empty body, the empty line its own chunk', at(`${header}\r\n\r\n`, header.length)],
    ['empty lines only as body', at(`${header}\r\n\r\n\r\n\r\n`, header.length + 3)],
    ['a body without a final CRLF', at(`${header}\r\n\r\nno final  line end `, header.length + 12)],
    ['no empty line: all header', at(`${header}\r\n`, 30)],
    ['every byte a chunk of its own', [...whole]],
    ['300 KB in 128 KiB chunks', at(big, 131072, 262144)],
    ['one chunk', [whole]],
  ];
  for (const algorithm of ['rsa-sha256', 'ed25519-sha256'] as DkimAlgorithm[]) {
    const pem = generateDkimKey(algorithm);
    const key: DkimKey = {
      domain: 'example.com',
      selector: 'sel',
      algorithm,
      privateKey: loadPrivateKey(pem, algorithm),
    };
    const record = publicKeyRecord(pem);
    const now = 1_796_000_000;
    for (const [name, parts] of cases)
      test(`${algorithm}: ${name}`, async () => {
        const message = Buffer.from(parts.join(''), 'latin1');
        const expected = signMessage(message, key, now);
        const seen: Buffer[] = [];
        const signed = await streamedSignatureField(
          chunked(parts),
          (h) => {
            seen.push(h);
            return key;
          },
          now,
        );
        assert.equal(
          signed!.field.toString('latin1'),
          expected.subarray(0, expected.length - message.length).toString('latin1'),
        );
        assert.equal(signed!.key, key);
        const end = message.indexOf('\r\n\r\n');
        assert.deepEqual(
          seen.map((h) => h.toString('latin1')),
          [message.subarray(0, end === -1 ? message.length : end + 4).toString('latin1')],
          'the key is chosen once, from the header block',
        );
        const result = await verify(Buffer.concat([signed!.field, message]), record);
        assert.equal(result.status.result, 'pass', JSON.stringify(result.status));
      });
  }
  test('a header block without a key: the chunks after it are not read', async () => {
    let read = 0;
    async function* counted() {
      for await (const chunk of chunked(at(whole, 10, header.length + 2, header.length + 20))) {
        read++;
        yield chunk;
      }
    }
    assert.equal(await streamedSignatureField(counted(), () => undefined), undefined);
    assert.equal(read, 3, 'read up to the chunk that ends the header block');
  });
});
