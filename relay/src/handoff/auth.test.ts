import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SKEW_MS, signReply, signRequest, verifyReply, verifyRequest } from './auth.ts';

const secret = Buffer.from('pool-secret-0123456789abcdef');
const other = Buffer.from('another-pool-secret-0123456789');
const body = Buffer.from('3\nabc');
const request = { method: 'POST', path: '/handoff/v1/messages', time: 1_000_000, body };

describe('handoff request signature', () => {
  const cases: {
    name: string;
    header: string;
    over?: Partial<typeof request>;
    now?: number;
    ok: boolean;
    reason?: string;
  }[] = [
    {
      name: 'a request signed with the pool secret is accepted',
      header: signRequest(secret, request),
      ok: true,
    },
    {
      name: 'a request signed with another pool secret is refused',
      header: signRequest(other, request),
      ok: false,
      reason: 'bad signature',
    },
    {
      name: 'a changed body is refused',
      header: signRequest(secret, request),
      over: { body: Buffer.from('3\nabd') },
      ok: false,
      reason: 'bad signature',
    },
    {
      name: 'the signature of a hello does not authorise a message post',
      header: signRequest(secret, { ...request, method: 'GET', path: '/handoff/v1/hello' }),
      ok: false,
      reason: 'bad signature',
    },
    {
      name: 'a request older than the allowed skew is refused',
      header: signRequest(secret, request),
      now: request.time + MAX_SKEW_MS + 1,
      ok: false,
      reason: 'signature time out of range',
    },
    { name: 'no header is refused', header: '', ok: false, reason: 'no signature' },
    { name: 'a malformed header is refused', header: 't=1,sig=zz', ok: false, reason: 'no signature' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const verdict = verifyRequest(
        secret,
        c.header,
        { method: request.method, path: request.path, body: request.body, ...c.over },
        c.now ?? request.time + 10,
      );
      assert.equal(verdict.ok, c.ok);
      if (!verdict.ok) assert.equal(verdict.reason, c.reason);
      else assert.equal(verdict.time, request.time);
    });
  }
});

describe('handoff reply signature', () => {
  const reply = Buffer.from('{"instance":"b","results":[]}');
  test('a reply signed for this request verifies', () => {
    assert.equal(verifyReply(secret, 42, reply, signReply(secret, 42, reply)), true);
  });
  test('a reply signed for another request (a replayed acknowledgement) does not', () => {
    assert.equal(verifyReply(secret, 43, reply, signReply(secret, 42, reply)), false);
  });
  test('a reply without the pool secret does not', () => {
    assert.equal(verifyReply(secret, 42, reply, signReply(other, 42, reply)), false);
    assert.equal(verifyReply(secret, 42, reply, null), false);
  });
  test('a changed reply body does not', () => {
    assert.equal(verifyReply(secret, 42, Buffer.from('{}'), signReply(secret, 42, reply)), false);
  });
});
