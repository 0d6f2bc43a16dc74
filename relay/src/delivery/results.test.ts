import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isConnectionFailure, resultsFromError, resultsFromReply, resultsFromSuccess } from './results.ts';

test('accepted recipients are delivered, refused ones classified on their own reply', () => {
  const results = resultsFromSuccess(['a@x.test', 'b@x.test'], {
    response: '250 2.0.0 Ok: queued as ABC',
    rejectedErrors: [{ recipient: 'b@x.test', responseCode: 550, response: '550 5.1.1 User unknown' }],
  });
  assert.deepEqual(
    results.map((r) => [r.recipient, r.outcome, r.category, r.code]),
    [
      ['a@x.test', 'delivered', undefined, 250],
      ['b@x.test', 'bounced', 'bad-mailbox', 550],
    ],
  );
});

test('a 4xx to DATA defers every recipient', () => {
  const results = resultsFromError(['a@x.test', 'b@x.test'], {
    code: 'EMESSAGE',
    responseCode: 451,
    response: '451 4.3.0 try later',
  });
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['deferred', 'deferred'],
  );
});

test('all recipients refused: each gets its own reply', () => {
  const results = resultsFromError(['a@x.test', 'b@x.test'], {
    code: 'EENVELOPE',
    responseCode: 550,
    response: '550 5.1.1 User unknown',
    rejectedErrors: [
      { recipient: 'a@x.test', responseCode: 550, response: '550 5.1.1 User unknown' },
      { recipient: 'b@x.test', responseCode: 452, response: '452 4.2.2 Mailbox full' },
    ],
  });
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['bounced', 'deferred'],
  );
});

test('a refused connection defers with the error text', () => {
  const [r] = resultsFromError(['a@x.test'], {
    code: 'ESOCKET',
    message: 'connect ECONNREFUSED 127.0.0.1:1',
  });
  assert.equal(r?.outcome, 'deferred');
  assert.equal(r?.reply, 'ESOCKET connect ECONNREFUSED 127.0.0.1:1');
});

test('a routing reply applies to every recipient', () => {
  assert.deepEqual(
    resultsFromReply(['a@x', 'b@x'], '550 5.1.2 x: domain not found').map((r) => r.category),
    ['bad-domain', 'bad-domain'],
  );
});

test('connection failures are told apart from SMTP replies', () => {
  assert.equal(isConnectionFailure({ code: 'ESOCKET' }), true);
  assert.equal(isConnectionFailure({ code: 'EPROTOCOL', responseCode: 421, command: 'CONN' }), true);
  assert.equal(isConnectionFailure({ code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' }), false);
});
