// The outbox line format, the webhook signature and the batching decisions: pure, table-driven.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { batchBody, decodeEvents, encodeEvent } from './codec.ts';
import { eventId, feedbackEvent, outcomeEvent, type MailEvent } from './event.ts';
import { signBatch, verifyBatch } from './signature.ts';
import { batchWait, retryWait } from './sink.ts';

const event = (n: number, over: Partial<MailEvent> = {}): MailEvent => ({
  id: eventId('delivered', 'Q1', `r${n}@example.net`),
  type: 'delivered',
  time: '2026-12-05T21:00:00.000Z',
  sendingDomain: 'example.com',
  recipient: `r${n}@example.net`,
  messageId: 'Q1',
  reply: '250 ok',
  ...over,
});

describe('outbox line codec', () => {
  test('events round-trip, including non-ASCII and newlines inside fields', () => {
    const events = [
      event(1),
      event(2, { reply: '550 5.1.1 nö\r\nsuch user' }),
      event(3, { url: 'https://x/é?a=1' }),
    ];
    const bytes = Buffer.concat(events.map(encodeEvent));
    const decoded = decodeEvents(bytes, 0);
    assert.deepEqual(
      decoded.events.map((d) => d.event),
      events,
    );
    assert.equal(decoded.end, bytes.length);
    assert.equal(decoded.damaged, 0);
    assert.equal(decoded.events[0]!.end, encodeEvent(events[0]!).length);
  });

  const whole = Buffer.concat([encodeEvent(event(1)), encodeEvent(event(2))]);
  const cases: { name: string; bytes: Buffer; events: number; damaged: number; end: number }[] = [
    {
      name: 'a last line torn by a crash (no newline) is not read, the end stays before it',
      bytes: whole.subarray(0, whole.length - 5),
      events: 1,
      damaged: 0,
      end: encodeEvent(event(1)).length,
    },
    {
      name: 'a line whose CRC does not match is skipped and counted',
      bytes: Buffer.from(whole.toString().replace('r1@', 'r9@')),
      events: 1,
      damaged: 1,
      end: whole.length,
    },
    {
      name: 'a line that is not a record at all is skipped and counted',
      bytes: Buffer.concat([Buffer.from('garbage\n'), encodeEvent(event(2))]),
      events: 1,
      damaged: 1,
      end: 8 + encodeEvent(event(2)).length,
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const decoded = decodeEvents(c.bytes, 0);
      assert.equal(decoded.events.length, c.events);
      assert.equal(decoded.damaged, c.damaged);
      assert.equal(decoded.end, c.end);
    });

  test('offsets count from the given base and max limits the events read', () => {
    const decoded = decodeEvents(whole, 1000, 1);
    assert.equal(decoded.events.length, 1);
    assert.equal(decoded.end, 1000 + encodeEvent(event(1)).length);
  });

  test('a batch body is the events as JSON lines', () => {
    const lines = batchBody([event(1), event(2)])
      .toString()
      .split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[2], '');
    assert.deepEqual(JSON.parse(lines[1]!), event(2));
  });
});

describe('webhook signature', () => {
  const secret = Buffer.from('0123456789abcdef-secret');
  const body = batchBody([event(1)]);
  const header = signBatch(secret, body, 1_800_000_000);
  const cases: {
    name: string;
    secret: Buffer;
    body: Buffer;
    header: string;
    now: number;
    ok: boolean | string;
  }[] = [
    { name: 'the signed body verifies', secret, body, header, now: 1_800_000_010, ok: true },
    {
      name: 'another secret fails',
      secret: Buffer.from('another-secret-of-16'),
      body,
      header,
      now: 1_800_000_000,
      ok: 'mismatch',
    },
    {
      name: 'a changed body fails',
      secret,
      body: batchBody([event(2)]),
      header,
      now: 1_800_000_000,
      ok: 'mismatch',
    },
    {
      name: 'a changed timestamp fails (it is inside the MAC)',
      secret,
      body,
      header: header.replace('t=1800000000', 't=1800000100'),
      now: 1_800_000_100,
      ok: 'mismatch',
    },
    {
      name: 'a batch older than the tolerance is refused',
      secret,
      body,
      header,
      now: 1_800_000_301,
      ok: 'too_old',
    },
    {
      name: 'a header without v1 is malformed',
      secret,
      body,
      header: 't=1800000000',
      now: 1_800_000_000,
      ok: 'malformed',
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const verdict = verifyBatch(c.secret, c.body, c.header, c.now);
      assert.deepEqual(verdict, c.ok === true ? { ok: true } : { ok: false, reason: c.ok });
    });
  test('the header is t=<seconds>,v1=<64 hex>', () => assert.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/));
});

describe('batching and retry waits', () => {
  const cases: { name: string; unsent: number; oldestAt: number; now: number; wait: number }[] = [
    { name: 'a full batch goes at once', unsent: 100, oldestAt: 1000, now: 1000, wait: 0 },
    {
      name: 'a partial batch waits for the interval from its first event',
      unsent: 3,
      oldestAt: 1000,
      now: 1200,
      wait: 800,
    },
    {
      name: 'a partial batch whose first event waited the interval goes',
      unsent: 3,
      oldestAt: 1000,
      now: 2000,
      wait: 0,
    },
    { name: 'an old backlog (after a restart) goes at once', unsent: 1, oldestAt: 0, now: 99_000, wait: 0 },
  ];
  for (const c of cases)
    test(c.name, () =>
      assert.equal(
        batchWait({ unsent: c.unsent, batchSize: 100, oldestAt: c.oldestAt, intervalMs: 1000, now: c.now }),
        c.wait,
      ),
    );
  test('retries back off from 1 s, doubling, up to the maximum', () =>
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryWait(n, 60_000)),
      [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000],
    ));
});

describe('event making', () => {
  const facts = {
    queueId: 'Q1',
    sendingDomain: 'example.com',
    recipient: 'a@example.net',
    reply: '250 ok',
    category: '',
    attempts: 1,
    now: 0,
  };
  test('the same final outcome made twice (a delivery repeated after a crash) has the same id', () =>
    assert.equal(
      outcomeEvent({ ...facts, outcome: 'delivered' })!.id,
      outcomeEvent({ ...facts, outcome: 'delivered', now: 5000, attempts: 2 })!.id,
    ));
  test('each deferral is its own event; an expiry is a bounce with category expired', () => {
    const first = outcomeEvent({ ...facts, outcome: 'deferred' })!;
    const second = outcomeEvent({ ...facts, outcome: 'deferred', attempts: 2 })!;
    assert.notEqual(first.id, second.id);
    const expired = outcomeEvent({ ...facts, outcome: 'expired' })!;
    assert.equal(expired.type, 'bounced');
    assert.equal(expired.category, 'expired');
  });
  test('a handed-off recipient makes no event here (its new holder does)', () =>
    assert.equal(outcomeEvent({ ...facts, outcome: 'handedoff' }), undefined));
  test('return-path reports: hard bounce is an async bounce, complaint is complained, others nothing', () => {
    const f = {
      queueId: 'Q1',
      sendingDomain: 'example.com',
      recipient: 'a@example.net',
      category: 'abuse',
      reason: 'r',
      now: 0,
    };
    assert.equal(feedbackEvent({ ...f, kind: 'hard-bounce' })!.async, true);
    assert.equal(feedbackEvent({ ...f, kind: 'complaint' })!.type, 'complained');
    assert.equal(feedbackEvent({ ...f, kind: 'soft-bounce' }), undefined);
    assert.equal(
      feedbackEvent({ ...f, kind: 'complaint' })!.id,
      feedbackEvent({ ...f, kind: 'complaint', now: 9 })!.id,
    );
  });
});
