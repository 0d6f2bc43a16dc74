import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergePolicy, mergeReplies, sumQueues } from './merge.ts';

const url = (path: string) => new URL(path, 'http://localhost');
const counts = (ready: number, deferred = 0) => ({ ready, waiting: 0, deferred, inflight: 0 });

describe('mergePolicy', () => {
  const cases: { route: Parameters<typeof mergePolicy>[0]; policy: ReturnType<typeof mergePolicy> }[] = [
    { route: { method: 'GET', pattern: '^\\/api\\/queue$', access: 'read' }, policy: 'sum-queue' },
    {
      route: { method: 'GET', pattern: '^\\/api\\/messages$', access: 'read' },
      policy: { concat: 'messages' },
    },
    {
      route: {
        method: 'DELETE',
        pattern: '^\\/api\\/messages\\/([A-Za-z0-9]+)$',
        access: 'admin',
        action: 'delete',
      },
      policy: 'first-found',
    },
    { route: { method: 'POST', pattern: '^\\/drain$', access: 'admin', action: 'drain' }, policy: 'drain' },
    {
      route: {
        method: 'POST',
        pattern: '^\\/api\\/suppressions$',
        access: 'admin',
        action: 'suppression-add',
      },
      policy: 'worker-0',
    },
  ];
  for (const c of cases)
    test(`${c.route.method} ${c.route.pattern} is ${JSON.stringify(c.policy)}`, () => {
      assert.deepEqual(mergePolicy(c.route), c.policy);
    });
});

describe('mergeReplies', () => {
  test('queue summaries add up per destination and sending domain; the oldest age is the largest', () => {
    const merged = sumQueues([
      {
        messages: 2,
        jobs: counts(1, 1),
        oldestAgeSeconds: 30,
        byDestination: { 'a.org': counts(1, 1) },
        bySendingDomain: { 'x.com': counts(1, 1) },
      },
      {
        messages: 3,
        jobs: counts(3),
        oldestAgeSeconds: 5,
        byDestination: { 'a.org': counts(2), 'b.org': counts(1) },
        bySendingDomain: { 'x.com': counts(3) },
      },
    ]);
    assert.equal(merged.messages, 5);
    assert.deepEqual(merged.jobs, counts(4, 1));
    assert.equal(merged.oldestAgeSeconds, 30);
    assert.deepEqual(merged.byDestination, { 'a.org': counts(3, 1), 'b.org': counts(1) });
    assert.deepEqual(merged.bySendingDomain, { 'x.com': counts(4, 1) });
  });

  test('message lists are joined up to the limit asked', () => {
    const reply = mergeReplies(
      { concat: 'messages' },
      [
        { status: 200, body: { messages: [{ id: 'a' }, { id: 'b' }] } },
        { status: 200, body: { messages: [{ id: 'c' }] } },
      ],
      url('/api/messages?limit=2'),
    );
    assert.deepEqual(reply.body, { messages: [{ id: 'a' }, { id: 'b' }] });
  });

  test('a message is answered by the shard that holds it', () => {
    const reply = mergeReplies(
      'first-found',
      [
        { status: 404, body: { error: 'not found: x' } },
        { status: 200, body: { id: 'x' } },
      ],
      url('/api/messages/x'),
    );
    assert.deepEqual(reply, { status: 200, body: { id: 'x' } });
  });

  test('a message no shard holds is 404', () => {
    const reply = mergeReplies(
      'first-found',
      [
        { status: 404, body: { error: 'not found: x' } },
        { status: 404, body: { error: 'not found: x' } },
      ],
      url('/api/messages/x'),
    );
    assert.equal(reply.status, 404);
  });

  test('a worker that did not answer makes the whole answer fail rather than undercount', () => {
    const reply = mergeReplies(
      'sum-queue',
      [
        { status: 200, body: {} },
        { status: 503, body: { error: 'worker 1 is not running' } },
      ],
      url('/api/queue'),
    );
    assert.equal(reply.status, 503);
  });
});
