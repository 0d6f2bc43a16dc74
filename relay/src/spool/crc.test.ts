import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { crc32Combine, crc32Of, rememberCrc32 } from './crc.ts';
import { encodeMessageParts } from './record.ts';

test('the combined CRC-32 of two parts is the CRC-32 of both, for any parts', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 3000 }), (a, b) => {
      const both = Buffer.concat([a, b]);
      assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(both));
    }),
    { numRuns: 2000 },
  );
});

test('the combined CRC-32 holds for message-sized parts', () => {
  for (const size of [1, 1023, 102_400, 1_048_576, 3_000_001]) {
    const head = randomBytes(200);
    const body = randomBytes(size);
    assert.equal(crc32Combine(crc32(head), crc32(body), size), crc32(Buffer.concat([head, body])), `${size}`);
  }
});

test("a record's remembered CRC-32 is its real one", () => {
  const parts = [Buffer.from('Received: x\r\n'), randomBytes(70_000), Buffer.from('\r\n')];
  const envelope = {
    id: 'q',
    from: '',
    recipients: ['a@example.org'],
    receivedAt: 1,
    client: { address: '::1', helo: 'h' },
  };
  const { record } = encodeMessageParts(envelope, parts);
  assert.equal(crc32Of(record), crc32(record));
});

test('a Buffer nothing was remembered for is computed', () => {
  const other = Buffer.from('abc');
  assert.equal(crc32Of(other), crc32(other));
  rememberCrc32(other, 7);
  assert.equal(crc32Of(other), 7, 'a remembered value is used as it is (so the record test above can fail)');
});
