import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeBatch,
  decodeDoneLog,
  encodeBatch,
  encodeBatchParts,
  encodeDoneLine,
  encodeStreamedTrailer,
  isBatchFile,
  STREAMED_BATCH_HEAD,
} from './batch.ts';
import { crc32 } from 'node:zlib';
import { encodeMessage } from './record.ts';

const record = (id: string, text = `Subject: ${id}\r\n\r\nbody of ${id}\r\n`) =>
  encodeMessage(
    {
      id,
      from: 'a@example.com',
      recipients: ['b@example.org'],
      receivedAt: 1,
      client: { address: '::1', helo: 'h' },
    },
    Buffer.from(text),
  );

describe('batch file', () => {
  test('round-trips any list of records, each at its span', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 500 }), { maxLength: 20 }), (arrays) => {
        const records = arrays.map((a) => Buffer.from(a));
        const { file, spans } = encodeBatch(records);
        const decoded = decodeBatch(file);
        assert.deepEqual(decoded.damaged, []);
        assert.equal(decoded.frames.length, records.length);
        decoded.frames.forEach((frame, i) => {
          assert.deepEqual(frame.record, records[i]);
          assert.deepEqual({ offset: frame.offset, length: frame.length }, spans[i]);
          assert.deepEqual(file.subarray(frame.offset, frame.offset + frame.length), records[i]);
        });
      }),
    );
  });

  test('the parts are the frame headers and the records themselves, not copies', () => {
    const records = [record('A'), record('B', 'x'.repeat(5000))];
    const { parts, size, spans } = encodeBatchParts(records);
    assert.equal(parts.length, 4);
    assert.equal(parts[1], records[0]);
    assert.equal(parts[3], records[1]);
    assert.equal(size, parts[0]!.length + records[0]!.length + parts[2]!.length + records[1]!.length);
    assert.deepEqual(Buffer.concat(parts), encodeBatch(records).file);
    assert.deepEqual(spans, encodeBatch(records).spans);
  });

  test('every truncation keeps the whole frames before the cut and reports the rest as damaged', () => {
    const records = [record('A'), record('B'), record('C')];
    const { file, spans } = encodeBatch(records);
    for (let len = 1; len < file.length; len++) {
      const decoded = decodeBatch(file.subarray(0, len));
      const whole = spans.filter((s) => s.offset + s.length <= len).length;
      assert.equal(decoded.frames.length, whole, `cut at ${len}`);
      const lastEnd = whole === 0 ? 0 : spans[whole - 1]!.offset + spans[whole - 1]!.length;
      if (lastEnd < len) {
        assert.equal(decoded.damaged.length, 1, `cut at ${len}`);
        assert.equal(decoded.damaged[0]!.offset, lastEnd);
        assert.equal(decoded.damaged[0]!.length, len - lastEnd);
      } else {
        assert.deepEqual(decoded.damaged, []);
      }
    }
  });

  test('a flipped byte inside a record loses that record only', () => {
    const { file, spans } = encodeBatch([record('A'), record('B'), record('C')]);
    const at = spans[1]!.offset + 10;
    file.writeUInt8(file.readUInt8(at) ^ 0x20, at);
    const decoded = decodeBatch(file);
    assert.deepEqual(
      decoded.frames.map((f) => f.offset),
      [spans[0]!.offset, spans[2]!.offset],
    );
    assert.equal(decoded.damaged.length, 1);
    assert.equal(decoded.damaged[0]!.reason, 'frame checksum mismatch');
  });

  test('garbage is one damaged span from the start', () => {
    const junk = Buffer.from('this is not\na spool file');
    assert.deepEqual(decodeBatch(junk), {
      frames: [],
      damaged: [{ offset: 0, length: junk.length, reason: 'bad frame header' }],
    });
    assert.equal(isBatchFile(junk), false);
  });

  test('a single-record file of an older relay is told apart from a batch file', () => {
    assert.equal(isBatchFile(record('OLD')), false);
    assert.equal(isBatchFile(encodeBatch([record('NEW')]).file), true);
  });
});

/** A streamed batch around `record`, as Journal.commitStream writes it. */
const streamedBatch = (rec: Buffer) =>
  Buffer.concat([STREAMED_BATCH_HEAD, rec, encodeStreamedTrailer(rec.length, crc32(rec))]);

describe('streamed batch file (one record, trailer frame)', () => {
  test('decodes to its one record at its span', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 2000 }), (bytes) => {
        const rec = Buffer.from(bytes);
        const decoded = decodeBatch(streamedBatch(rec));
        assert.deepEqual(decoded.damaged, []);
        assert.equal(decoded.frames.length, 1);
        assert.deepEqual(decoded.frames[0]!.record, rec);
        assert.equal(decoded.frames[0]!.offset, STREAMED_BATCH_HEAD.length);
      }),
    );
  });

  test('every truncation is one damaged span over the whole file, with no record', () => {
    const file = streamedBatch(record('S', 'x\r\n'.repeat(50)));
    for (let len = STREAMED_BATCH_HEAD.length; len < file.length; len++) {
      const decoded = decodeBatch(file.subarray(0, len));
      assert.deepEqual(decoded.frames, [], `cut at ${len}`);
      assert.deepEqual(
        decoded.damaged.map((d) => [d.offset, d.length]),
        [[0, len]],
        `cut at ${len}`,
      );
    }
  });

  test('a flipped byte anywhere in the record fails the trailer checksum', () => {
    const rec = record('S', 'hello\r\n');
    for (let at = STREAMED_BATCH_HEAD.length; at < STREAMED_BATCH_HEAD.length + rec.length; at++) {
      const file = streamedBatch(rec);
      file.writeUInt8(file.readUInt8(at) ^ 0x20, at);
      const decoded = decodeBatch(file);
      assert.equal(decoded.frames.length, 0, `flipped at ${at}`);
      assert.equal(decoded.damaged.length, 1, `flipped at ${at}`);
    }
  });
});

describe('done log', () => {
  test('round-trips ids', () => {
    const ids = ['M1', 'M2', 'LZ0001ABCDEF'];
    assert.deepEqual(decodeDoneLog(ids.map(encodeDoneLine).join('')), new Set(ids));
  });

  test('a torn last line is not counted', () => {
    assert.deepEqual(decodeDoneLog(`${encodeDoneLine('M1')}M2`), new Set(['M1']));
    assert.deepEqual(decodeDoneLog(''), new Set());
  });
});
