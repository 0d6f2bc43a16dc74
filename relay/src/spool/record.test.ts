import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import {
  decodeMessage,
  decodeStateLog,
  encodeMessage,
  encodeMessageParts,
  encodeStateLine,
  encodeStreamedTail,
  STREAMED_RECORD_HEAD,
} from './record.ts';

const envelope = (over = {}) => ({
  id: 'q1',
  from: 'a@example.com',
  recipients: ['b@example.org', 'c@example.net'],
  receivedAt: 1_700_000_000_000,
  client: { address: '127.0.0.1', helo: 'client' },
  ...over,
});

describe('message record', () => {
  test('round-trips any envelope and body', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.string(),
        fc.array(fc.string(), { minLength: 1, maxLength: 5 }),
        (bytes, from, recipients) => {
          const body = Buffer.from(bytes);
          const decoded = decodeMessage(encodeMessage(envelope({ from, recipients }), body));
          assert.ok(decoded.ok);
          assert.deepEqual(decoded.body, body);
          assert.equal(decoded.envelope.from, from);
          assert.deepEqual(decoded.envelope.recipients, recipients);
        },
      ),
    );
  });

  test('every truncation is detected', () => {
    const file = encodeMessage(envelope(), Buffer.from('Subject: x\r\n\r\nhello world\r\n'));
    for (let len = 0; len < file.length; len++) {
      assert.equal(decodeMessage(file.subarray(0, len)).ok, false, `truncated to ${len}`);
    }
  });

  test('a flipped body byte is detected by the checksum', () => {
    const file = encodeMessage(envelope(), Buffer.from('Subject: x\r\n\r\nhello world\r\n'));
    const at = file.length - 3;
    file.writeUInt8(file.readUInt8(at) ^ 0x01, at);
    assert.deepEqual(decodeMessage(file), { ok: false, reason: 'body checksum mismatch' });
  });

  test('a handed-off envelope keeps its states and origin through the codec', () => {
    const states = [
      { index: 0, status: 'deferred' as const, attempts: 7, nextAttemptAt: 123, reply: '451 later' },
    ];
    const decoded = decodeMessage(
      encodeMessage({ ...envelope(), states, handedFrom: 'abc' }, Buffer.from('x')),
    );
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.envelope.states, states);
    assert.equal(decoded.envelope.handedFrom, 'abc');
  });

  test('DSN parameters (RET, ENVID, per-recipient NOTIFY and ORCPT) round-trip through the codec', () => {
    const notify = fc.subarray(['SUCCESS', 'FAILURE', 'DELAY'] as const, { minLength: 1 });
    const recipient = fc.option(
      fc.record(
        { notify: fc.oneof(notify, fc.constant(['NEVER' as const])), orcpt: fc.string() },
        {
          requiredKeys: [],
          noNullPrototype: true,
        },
      ),
      { nil: null },
    );
    fc.assert(
      fc.property(
        fc.constantFrom('FULL' as const, 'HDRS' as const, undefined),
        fc.option(fc.string(), { nil: undefined }),
        fc.array(recipient, { minLength: 1, maxLength: 4 }),
        (ret, envid, recipients) => {
          const dsn = {
            ...(ret ? { ret } : {}),
            ...(envid !== undefined ? { envid } : {}),
            recipients,
          };
          const rcpts = recipients.map((_, i) => `r${i}@example.org`);
          const decoded = decodeMessage(
            encodeMessage(envelope({ recipients: rcpts, dsn }), Buffer.from('x')),
          );
          assert.ok(decoded.ok);
          assert.deepEqual(decoded.envelope.dsn, dsn);
        },
      ),
    );
  });

  test('a record written before DSN parameters were kept still decodes, with none', () => {
    // The bytes a relay of the previous release wrote (no "dsn" key), copied literally.
    const json =
      '{"id":"MXAP5ZLG000136626C","from":"a@example.com","recipients":["r0@dest.example"],"receivedAt":1764956358772,"client":{"address":"127.0.0.1","helo":"client"},"bodyLength":5,"bodyCrc32":' +
      crc32(Buffer.from('hello')) +
      '}';
    const decoded = decodeMessage(Buffer.from(`MFQ1 ${json.length}\n${json}\nhello`, 'latin1'));
    assert.ok(decoded.ok);
    assert.equal(decoded.envelope.dsn, undefined);
    assert.deepEqual(decoded.envelope.recipients, ['r0@dest.example']);
  });

  test('malformed DSN parameters make the envelope invalid (quarantined, never half-understood)', () => {
    const cases: [string, unknown][] = [
      ['RET other than FULL or HDRS', { ret: 'BODY' }],
      ['ENVID not a string', { envid: 5 }],
      ['a NOTIFY value RFC 3461 does not define', { recipients: [{ notify: ['ALWAYS'] }, null] }],
      ['a recipient list of another length', { recipients: [null] }],
      ['ORCPT not a string', { recipients: [{ orcpt: 1 }, null] }],
      ['not an object', 'FULL'],
    ];
    for (const [name, dsn] of cases) {
      const decoded = decodeMessage(encodeMessage(envelope({ dsn }), Buffer.from('x')));
      assert.deepEqual(decoded, { ok: false, reason: 'envelope fields missing' }, name);
    }
  });

  test('garbage is refused with a reason', () => {
    assert.deepEqual(decodeMessage(Buffer.from('hello\nworld')), { ok: false, reason: 'bad magic' });
    assert.deepEqual(decodeMessage(Buffer.from('MFQ1 2\n{}\n')), {
      ok: false,
      reason: 'envelope fields missing',
    });
  });
});

const two = { recipients: ['a@x.org', 'b@x.org'] };

describe('recipient state log', () => {
  test('the last line per recipient wins', () => {
    const text =
      encodeStateLine({ index: 0, status: 'deferred', attempts: 1, nextAttemptAt: 5 }) +
      encodeStateLine({ index: 0, status: 'delivered', attempts: 2, reply: '250 ok' });
    assert.equal(decodeStateLog(text, two).get(0)?.status, 'delivered');
    assert.equal(decodeStateLog(text, two).has(1), false);
  });

  test('a torn final line is ignored', () => {
    const text = encodeStateLine({ index: 1, status: 'delivered', attempts: 1 }) + '{"index":0,"sta';
    const states = decodeStateLog(text, two);
    assert.equal(states.size, 1);
    assert.equal(states.get(1)?.status, 'delivered');
  });

  test('states carried by a handed-off envelope come first; the log overrides them', () => {
    const carried = {
      ...two,
      states: [
        { index: 0, status: 'delivered' as const, attempts: 2 },
        { index: 1, status: 'deferred' as const, attempts: 3, nextAttemptAt: 9 },
      ],
    };
    assert.deepEqual(decodeStateLog('', carried).get(1), {
      index: 1,
      status: 'deferred',
      attempts: 3,
      nextAttemptAt: 9,
    });
    const log = encodeStateLine({ index: 1, status: 'delivered', attempts: 4 });
    const states = decodeStateLog(log, carried);
    assert.equal(states.get(0)?.status, 'delivered');
    assert.equal(states.get(1)?.attempts, 4);
  });

  test('an index outside the recipient list is ignored', () => {
    assert.equal(
      decodeStateLog(encodeStateLine({ index: 5, status: 'delivered', attempts: 1 }), two).size,
      0,
    );
  });
});

test('a record built from the chunks as they arrived is the record of the whole message', () => {
  const cases: [string, string[]][] = [
    ['one chunk', ['Subject: x\r\n\r\nbody\r\n']],
    ['header and body chunks', ['Received: from h\r\n', 'Subject: x\r\n\r\n', 'bo', 'dy\r\n']],
    ['empty chunks among them', ['', 'Subject: é\r\n\r\n', '', 'x\r\n']],
    ['no chunks', []],
  ];
  for (const [name, chunks] of cases) {
    const parts = chunks.map((c) => Buffer.from(c, 'utf8'));
    const whole = Buffer.concat(parts);
    const built = encodeMessageParts(envelope(), parts);
    assert.deepEqual(built.record, encodeMessage(envelope(), whole), name);
    assert.deepEqual(built.body, whole, name);
    assert.equal(built.body.buffer, built.record.buffer, `${name}: the body is the record's bytes`);
    assert.equal(built.envelope.bodyCrc32, crc32(whole), name);
    const decoded = decodeMessage(built.record);
    assert.ok(decoded.ok && decoded.body.equals(whole), name);
  }
});

/** A version 2 record as a stream writes it: head, the chunks, then the envelope counted over them. */
function streamedRecord(chunks: Buffer[], over = {}): Buffer {
  let bodyLength = 0;
  let bodyCrc32 = 0;
  for (const c of chunks) {
    bodyLength += c.length;
    bodyCrc32 = crc32(c, bodyCrc32);
  }
  const tail = encodeStreamedTail({ ...envelope(over), bodyLength, bodyCrc32 });
  return Buffer.concat([STREAMED_RECORD_HEAD, ...chunks, tail]);
}

describe('streamed message record (version 2: envelope after the body)', () => {
  test('round-trips any body in any chunking, the envelope counted chunk by chunk', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.string(), { minLength: 1, maxLength: 5 }),
        (arrays, recipients) => {
          const chunks = arrays.map((a) => Buffer.from(a));
          const decoded = decodeMessage(streamedRecord(chunks, { recipients }));
          assert.ok(decoded.ok);
          assert.deepEqual(decoded.body, Buffer.concat(chunks));
          assert.deepEqual(decoded.envelope.recipients, recipients);
        },
      ),
    );
  });

  test('a body that looks like a record trailer or a version 1 head is still just the body', () => {
    const body = Buffer.from('MFQ1 12\n{}\nMFQ2 2\n{}\nMFQ2 5\n');
    const decoded = decodeMessage(streamedRecord([body]));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.body, body);
  });

  test('every truncation is detected', () => {
    const file = streamedRecord([Buffer.from('Subject: x\r\n\r\n'), Buffer.from('hello world\r\n')]);
    for (let len = 0; len < file.length; len++) {
      assert.equal(decodeMessage(file.subarray(0, len)).ok, false, `truncated to ${len}`);
    }
  });

  test('a flipped body byte is detected by the checksum', () => {
    const file = streamedRecord([Buffer.from('Subject: x\r\n\r\nhello world\r\n')]);
    file.writeUInt8(file.readUInt8(10) ^ 0x01, 10);
    assert.deepEqual(decodeMessage(file), { ok: false, reason: 'body checksum mismatch' });
  });

  test('a version 1 record and a version 2 record of the same message decode to the same values', () => {
    const body = Buffer.from('Subject: same\r\n\r\nbody\r\n');
    const v1 = decodeMessage(encodeMessage(envelope(), body));
    const v2 = decodeMessage(streamedRecord([body.subarray(0, 7), body.subarray(7)]));
    assert.ok(v1.ok && v2.ok);
    assert.deepEqual(v2.envelope, v1.envelope);
    assert.deepEqual(v2.body, v1.body);
  });
});
