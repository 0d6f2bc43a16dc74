import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROLE, age, listTable, parseQueueArgs, refusal, relayPods } from './queue.ts';
import { podProxyPath } from './transport.ts';

test('each command parses, or is a usage error that says why', async (t) => {
  const cases: { args: string[]; want: Record<string, unknown> | string }[] = [
    {
      args: ['list', '--pool', 'p'],
      want: { command: 'list', pool: 'p', limit: 100, via: 'proxy', json: false },
    },
    {
      args: ['list', '--pool', 'p', '-n', 'mail', '--state', 'deferred', '--limit', '5', '-o', 'json'],
      want: { command: 'list', namespace: 'mail', state: 'deferred', limit: 5, json: true },
    },
    { args: ['show', 'MX1', '--pool', 'p'], want: { command: 'show', id: 'MX1' } },
    { args: ['retry', 'MX1', '--pool', 'p', '--via', 'port-forward'], want: { via: 'port-forward' } },
    { args: ['drain', '--pool', 'p', '--pod', 'p-0'], want: { command: 'drain', pod: 'p-0' } },
    { args: ['list'], want: '--pool is required' },
    { args: ['show', '--pool', 'p'], want: 'show needs a message id' },
    { args: ['delete', '../drain', '--pool', 'p'], want: 'delete needs a message id' },
    { args: ['list', 'x', '--pool', 'p'], want: 'list takes no argument' },
    { args: ['drain', '--pool', 'p'], want: 'drain needs --pod (one relay at a time)' },
    { args: ['purge', '--pool', 'p'], want: 'unknown command purge' },
    { args: ['list', '--pool', 'p', '--via', 'ssh'], want: '--via is proxy or port-forward' },
    { args: ['list', '--pool', 'p', '--limit', '0'], want: '--limit must be a positive integer' },
  ];
  for (const c of cases)
    await t.test(c.args.join(' '), () => {
      const parsed = parseQueueArgs(c.args);
      if (typeof c.want === 'string') return assert.deepEqual(parsed, { error: c.want });
      for (const [key, value] of Object.entries(c.want))
        assert.deepEqual((parsed as Record<string, unknown>)[key], value, key);
    });
});

test('reading commands use the read token, changing ones the admin token', () => {
  assert.deepEqual(ROLE, {
    summary: 'read',
    list: 'read',
    show: 'read',
    retry: 'admin',
    delete: 'admin',
    drain: 'admin',
  });
});

test('running pods of the pool are asked, draining (not Ready) ones too, pending ones not', () => {
  const pod = (name: string, phase: string) => ({ metadata: { name }, status: { phase } });
  const pods = [pod('b', 'Running'), pod('a', 'Running'), pod('c', 'Pending'), pod('d', 'Succeeded')];
  assert.deepEqual(relayPods(pods), ['a', 'b']);
  assert.deepEqual(relayPods(pods, 'b'), ['b']);
  assert.deepEqual(relayPods(pods, 'c'), []);
});

test('the pod proxy path carries the relay path and query to port 8080', () => {
  assert.deepEqual(podProxyPath('mail', 'outbound-0', '/api/messages?limit=5&state=deferred'), {
    path: '/api/v1/namespaces/mail/pods/outbound-0:8080/proxy/api/messages',
    query: { limit: '5', state: 'deferred' },
  });
});

test('list table: one line per message, aligned', () => {
  const text = listTable([
    {
      pod: 'outbound-0',
      messages: [
        {
          id: 'MXA1',
          from: 'app@example.com',
          recipients: 2,
          ageSeconds: 7300,
          jobs: [
            { destination: 'example.org', state: 'deferred', attempts: 3 },
            { destination: 'example.net', state: 'ready', attempts: 0 },
          ],
        },
        { id: 'MXA2', from: '', recipients: 1, ageSeconds: 5, jobs: [] },
      ],
    },
  ]);
  assert.deepEqual(text.split('\n'), [
    'POD         ID    AGE  FROM             RCPT  STATE           ATTEMPTS',
    'outbound-0  MXA1  2h   app@example.com  2     deferred,ready  3',
    'outbound-0  MXA2  5s   <>               1                     0',
    '',
  ]);
});

test('ages read like kubectl', () => {
  assert.deepEqual([5, 119, 120, 7199, 7200, 172800].map(age), ['5s', '119s', '2m', '119m', '2h', '2d']);
});

test('a refusal names the pod, the status, the relay error and what to do', () => {
  assert.equal(
    refusal('p-0', { status: 403, text: '{"error":"read token may not delete"}' }, 's'),
    'p-0: 403 read token may not delete (a read token cannot change the queue)',
  );
  assert.match(
    refusal('p-0', { status: 401, text: '{"error":"invalid token"}' }, 'pool-admin-tokens'),
    /Secret pool-admin-tokens/,
  );
  assert.equal(refusal('p-0', { status: 503, text: 'no endpoints' }, 's'), 'p-0: 503 no endpoints');
});
