import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMessage, type QueuedMessage } from '../scheduler/model.ts';
import type { RecipientState } from '../spool/record.ts';
import { batches, peerAddresses, readyPeers, transferStates, transferable } from './plan.ts';

const NOW = 1_700_000_000_000;

function message(
  states: RecipientState[] = [],
  recipients = ['a@x.org', 'b@x.org', 'c@y.org'],
): QueuedMessage {
  return buildMessage(
    {
      id: 'q1',
      from: 's@example.com',
      recipients,
      receivedAt: NOW - 60_000,
      client: { address: '10.0.0.1', helo: 'c' },
      bodyLength: 10,
      bodyCrc32: 0,
    },
    new Map(states.map((s) => [s.index, s])),
    (d) => d,
    NOW,
  );
}

describe('readyPeers', () => {
  const cases: { name: string; probes: Parameters<typeof readyPeers>[0]; expected: string[] }[] = [
    {
      name: 'a ready peer is chosen',
      probes: [{ address: '10.0.0.2:2526', hello: { instance: 'b', draining: false } }],
      expected: ['10.0.0.2:2526'],
    },
    {
      name: 'this relay, found among the Service records, is never a peer',
      probes: [
        { address: '10.0.0.1:2526', hello: { instance: 'self', draining: true } },
        { address: '10.0.0.2:2526', hello: { instance: 'b', draining: false } },
      ],
      expected: ['10.0.0.2:2526'],
    },
    {
      name: 'a draining peer is skipped',
      probes: [
        { address: '10.0.0.2:2526', hello: { instance: 'b', draining: true } },
        { address: '10.0.0.3:2526', hello: { instance: 'c', draining: false } },
      ],
      expected: ['10.0.0.3:2526'],
    },
    {
      name: 'a peer that did not answer a signed hello is skipped',
      probes: [{ address: '10.0.0.2:2526', error: 'reply signature does not verify' }],
      expected: [],
    },
    {
      name: 'one relay reachable under two addresses counts once',
      probes: [
        { address: '10.0.0.2:2526', hello: { instance: 'b', draining: false } },
        { address: '[fd00::2]:2526', hello: { instance: 'b', draining: false } },
      ],
      expected: ['10.0.0.2:2526'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        readyPeers(c.probes, 'self').map((p) => p.address),
        c.expected,
      );
    });
  }
});

describe('transferStates', () => {
  test('a never-attempted message goes with every recipient pending, ready now', () => {
    const states = transferStates(message());
    assert.deepEqual(states, [
      { index: 0, status: 'deferred', attempts: 0 },
      { index: 1, status: 'deferred', attempts: 0 },
      { index: 2, status: 'deferred', attempts: 0 },
    ]);
  });

  test('a delivered recipient stays delivered (never sent again); a deferred one keeps attempts, retry time and reply', () => {
    const states = transferStates(
      message([
        { index: 0, status: 'delivered', attempts: 1, reply: '250 ok' },
        { index: 1, status: 'deferred', attempts: 3, nextAttemptAt: NOW + 5000, reply: '451 later' },
        { index: 2, status: 'bounced', attempts: 1, reply: '550 no' },
      ]),
    );
    assert.deepEqual(states[0], { index: 0, status: 'delivered', attempts: 1, reply: '250 ok' });
    assert.equal(states[1]!.status, 'deferred');
    assert.equal(states[1]!.attempts, 3);
    assert.equal(states[1]!.nextAttemptAt, NOW + 5000);
    assert.equal(states[2]!.status, 'bounced');
  });

  test('a recipient already warned (its "delayed" DSN sent) stays warned: recovered from its state, transferred, rebuilt', () => {
    const recovered = message([{ index: 1, status: 'deferred', attempts: 5, delayNotified: true }]);
    assert.deepEqual(
      recovered.recipients.map((r) => r.delayNotified === true),
      [false, true, false],
    );
    const states = transferStates(recovered);
    assert.deepEqual(
      states.map((s) => s.delayNotified === true),
      [false, true, false],
    );
    const received = buildMessage(
      recovered.envelope,
      new Map(states.map((s) => [s.index, s])),
      (d) => d,
      NOW,
    );
    assert.equal(received.recipients[1]!.delayNotified, true);
  });

  test('the receiving side rebuilds the same queue state from the transferred states', () => {
    const sent = message([
      { index: 0, status: 'handedoff', attempts: 2 },
      { index: 2, status: 'deferred', attempts: 4, nextAttemptAt: NOW + 9000 },
    ]);
    const states = transferStates(sent);
    const received = buildMessage(sent.envelope, new Map(states.map((s) => [s.index, s])), (d) => d, NOW);
    assert.deepEqual(
      received.recipients.map((r) => [r.status, r.attempts]),
      [
        ['handedoff', 2],
        [undefined, 0],
        [undefined, 4],
      ],
    );
    assert.equal(received.jobs.get('y.org')?.state, 'deferred');
    assert.equal(received.jobs.get('y.org')?.nextAttemptAt, NOW + 9000);
    assert.equal(received.jobs.get('x.org')?.state, 'ready');
  });
});

describe('transferable', () => {
  test('deleted messages and messages with nothing pending stay', () => {
    const pending = message();
    const deleted = message();
    deleted.deleted = true;
    const done = message([
      { index: 0, status: 'delivered', attempts: 1 },
      { index: 1, status: 'delivered', attempts: 1 },
      { index: 2, status: 'delivered', attempts: 1 },
    ]);
    assert.deepEqual(transferable([pending, deleted, done]), [pending]);
  });
});

describe('batches', () => {
  const cases: { name: string; sizes: number[]; expected: number[][] }[] = [
    { name: 'split by count', sizes: [1, 1, 1, 1, 1], expected: [[1, 1], [1, 1], [1]] },
    { name: 'split by bytes', sizes: [6, 5, 4], expected: [[6], [5, 4]] },
    { name: 'an item larger than the byte bound goes alone', sizes: [3, 50, 3], expected: [[3], [50], [3]] },
    { name: 'nothing to send, no batch', sizes: [], expected: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        batches(c.sizes, (n) => n, 2, 10),
        c.expected,
      );
    });
  }
});

describe('peerAddresses', () => {
  test('Service records on the handoff port, then static peers, without repeats', () => {
    assert.deepEqual(peerAddresses(['10.0.0.2', 'fd00::3'], 2526, ['127.0.0.1:4000', '10.0.0.2:2526']), [
      '10.0.0.2:2526',
      '[fd00::3]:2526',
      '127.0.0.1:4000',
    ]);
  });
});
