import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  afterSend,
  assign,
  envelopeOf,
  isTransient,
  MAX_REQUEUES,
  onFailure,
  type FailedAttempt,
  type SmtpFailure,
} from './pool-policy.ts';

test('a message goes to an idle connection, else a new one within the limit, else waits', () => {
  const cases: [string, Parameters<typeof assign>[0], ReturnType<typeof assign>][] = [
    ['an idle connection is reused first', { idle: 1, open: 3, maxConnections: 3 }, 'idle'],
    ['no idle one and room: open one', { idle: 0, open: 2, maxConnections: 3 }, 'open'],
    ['no idle one and no room: wait', { idle: 0, open: 3, maxConnections: 3 }, 'wait'],
    [
      'the first message of a pool opens its first connection',
      { idle: 0, open: 0, maxConnections: 1 },
      'open',
    ],
  ];
  for (const [name, state, expected] of cases) assert.equal(assign(state), expected, name);
});

test('after a message the connection is reused, reset or closed', () => {
  const refused = (code: string, responseCode: number): SmtpFailure => ({ code, responseCode });
  const cases: [string, Parameters<typeof afterSend>[0], ReturnType<typeof afterSend>][] = [
    [
      'delivered, under the limit',
      { failure: undefined, sent: 1, maxMessages: 100, closing: false },
      'reuse',
    ],
    [
      'delivered, limit reached',
      { failure: undefined, sent: 100, maxMessages: 100, closing: false },
      'close',
    ],
    [
      'delivered while the pool closes',
      { failure: undefined, sent: 1, maxMessages: 100, closing: true },
      'close',
    ],
    [
      'recipients refused: RSET and keep it',
      { failure: refused('EENVELOPE', 550), sent: 1, maxMessages: 100, closing: false },
      'reset',
    ],
    [
      'message refused after DATA: RSET and keep it',
      { failure: refused('EMESSAGE', 554), sent: 1, maxMessages: 100, closing: false },
      'reset',
    ],
    [
      'refused, but the limit is reached: no point resetting',
      { failure: refused('EMESSAGE', 451), sent: 5, maxMessages: 5, closing: false },
      'close',
    ],
    [
      '421: the server is closing the session',
      { failure: refused('EENVELOPE', 421), sent: 1, maxMessages: 100, closing: false },
      'close',
    ],
    [
      'a socket error',
      { failure: { code: 'ESOCKET', command: 'CONN' }, sent: 1, maxMessages: 100, closing: false },
      'close',
    ],
    [
      'a timeout',
      { failure: { code: 'ETIMEDOUT', command: 'CONN' }, sent: 1, maxMessages: 100, closing: false },
      'close',
    ],
  ];
  for (const [name, input, expected] of cases) assert.equal(afterSend(input), expected, name);
});

test('which failures send the message back to the queue, with a growing pause', () => {
  const attempt = (over: Partial<FailedAttempt>): FailedAttempt => ({
    stage: 'send',
    error: { code: 'ECONNECTION', command: 'CONN', message: 'Connection closed unexpectedly' },
    reused: true,
    bodyStarted: false,
    requeues: 0,
    ...over,
  });
  const cases: [string, FailedAttempt, number | 'fail'][] = [
    ['a reused connection found dead before the message', attempt({}), 50],
    ['the same, second requeue', attempt({ requeues: 1 }), 100],
    ['the pause is capped', attempt({ requeues: 4 }), 800],
    [
      'a reused connection answering 421 to MAIL',
      attempt({ error: { code: 'EENVELOPE', responseCode: 421 } }),
      50,
    ],
    ['a reused connection timing out before the message', attempt({ error: { code: 'ETIMEDOUT' } }), 50],
    ['part of the message went out: the server may have it', attempt({ bodyStarted: true }), 'fail'],
    ['a fresh connection failing in the transaction', attempt({ reused: false }), 'fail'],
    [
      'a refusal is the message outcome',
      attempt({ error: { code: 'EENVELOPE', responseCode: 550 } }),
      'fail',
    ],
    [
      'a new connection closed before the greeting',
      attempt({ stage: 'closed-before-greeting', reused: false }),
      50,
    ],
    [
      'a refused connection (next MX instead)',
      attempt({ stage: 'connect', reused: false, error: { code: 'ESOCKET', command: 'CONN' } }),
      'fail',
    ],
  ];
  for (const [name, input, expected] of cases) {
    const d = onFailure(input);
    assert.deepEqual(d.action === 'requeue' ? d.delayMs : d.action, expected, name);
  }
});

test('a message that keeps landing on dying connections fails as a connection failure', () => {
  const d = onFailure({
    stage: 'closed-before-greeting',
    error: { code: 'ECONNECTION', command: 'CONN' },
    reused: false,
    bodyStarted: false,
    requeues: MAX_REQUEUES,
  });
  assert.equal(d.action, 'fail');
  assert.equal(d.action === 'fail' && d.error.code, 'ECONNECTION');
  assert.match(d.action === 'fail' ? (d.error.message ?? '') : '', /maximum number of retries/);
});

test('a failed message keeps its own error', () => {
  const error = { code: 'EMESSAGE', responseCode: 554, message: 'Message failed' };
  const d = onFailure({ stage: 'send', error, reused: true, bodyStarted: true, requeues: 0 });
  assert.equal(d.action === 'fail' && d.error, error);
});

test('transient failures are the ones that end a connection', () => {
  const cases: [SmtpFailure, boolean][] = [
    [{ responseCode: 421, code: 'EENVELOPE' }, true],
    [{ code: 'ECONNECTION' }, true],
    [{ code: 'ESOCKET' }, true],
    [{ code: 'ETIMEDOUT' }, true],
    [{ code: 'ETLS' }, false],
    [{ code: 'EENVELOPE', responseCode: 451 }, false],
  ];
  for (const [error, expected] of cases) assert.equal(isTransient(error), expected, JSON.stringify(error));
});

test('the envelope keeps addresses as accepted and each recipient once', () => {
  const cases: [string, string, string[], { from: string; to: string[] }][] = [
    ['one recipient', 'a@x.test', ['b@y.test'], { from: 'a@x.test', to: ['b@y.test'] }],
    ['the null sender of a DSN', '', ['b@y.test'], { from: '', to: ['b@y.test'] }],
    [
      'duplicates once, first order',
      'a@x.test',
      ['b@y.test', 'c@y.test', 'b@y.test'],
      { from: 'a@x.test', to: ['b@y.test', 'c@y.test'] },
    ],
    [
      'a quoted local part untouched',
      'a@x.test',
      ['"b c"@y.test'],
      { from: 'a@x.test', to: ['"b c"@y.test'] },
    ],
  ];
  for (const [name, from, to, expected] of cases) assert.deepEqual(envelopeOf(from, to), expected, name);
});
