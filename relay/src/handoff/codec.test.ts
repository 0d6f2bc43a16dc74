import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeBatch, encodeBatch, parseHello, parseReply } from './codec.ts';

describe('handoff batch framing', () => {
  test('round-trips any list of records', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 20 }), (arrays) => {
        const records = arrays.map((a) => Buffer.from(a));
        const decoded = decodeBatch(encodeBatch(records));
        assert.ok(decoded.ok);
        assert.deepEqual(decoded.records, records);
      }),
    );
  });

  const bad: [string, string, string][] = [
    ['a frame cut short', '10\nabc', 'truncated frame'],
    ['a length that is not a number', 'x\nabc', 'bad frame length'],
    ['an empty frame', '0\n', 'bad frame length'],
    ['no frame header line', 'abcdefghijklmnopqrstuvwxyz', 'bad frame header'],
  ];
  for (const [name, text, reason] of bad) {
    test(`${name} is refused`, () => {
      assert.deepEqual(decodeBatch(Buffer.from(text)), { ok: false, reason });
    });
  }
});

describe('handoff replies', () => {
  test('a reply with one result per record is read', () => {
    const text = JSON.stringify({
      instance: 'b',
      results: [
        { id: 'q1', result: 'stored' },
        { id: 'q2', result: 'duplicate' },
        { id: 'q3', result: 'refused', reason: 'disk' },
      ],
    });
    assert.deepEqual(
      parseReply(text, 3)?.results.map((r) => r.result),
      ['stored', 'duplicate', 'refused'],
    );
  });
  test('a reply with fewer results than records sent is not trusted', () => {
    assert.equal(
      parseReply(JSON.stringify({ instance: 'b', results: [{ id: 'q1', result: 'stored' }] }), 2),
      undefined,
    );
  });
  test('an unknown result is not trusted', () => {
    assert.equal(
      parseReply(JSON.stringify({ instance: 'b', results: [{ id: 'q1', result: 'ok' }] }), 1),
      undefined,
    );
  });
  test('a hello carries the instance and whether it drains', () => {
    assert.deepEqual(parseHello('{"instance":"a","draining":true,"x":1}'), { instance: 'a', draining: true });
    assert.equal(parseHello('{"instance":"a"}'), undefined);
    assert.equal(parseHello('not json'), undefined);
  });
});
