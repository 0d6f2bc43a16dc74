import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  afterFailedAttempt,
  bearerToken,
  decideAccess,
  isFull,
  matchToken,
  presentedAuthorization,
  throttledFor,
  tokenDigest,
  type Access,
  type AdminToken,
  type AuthDecision,
  type BucketPolicy,
  type FailureBucket,
} from './auth.ts';

const READ = 'read-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';
const tokens: AdminToken[] = [
  { name: 'viewer', role: 'read', digest: tokenDigest(READ) },
  { name: 'oncall', role: 'admin', digest: tokenDigest(ADMIN) },
];

function decide(required: Access, authorization?: string, throttledForSeconds = 0): AuthDecision {
  return decideAccess({ required, authorization, tokens, throttledForSeconds });
}

describe('decideAccess', () => {
  const cases: { name: string; required: Access; auth?: string; throttled?: number; want: AuthDecision }[] = [
    { name: 'a public route needs nothing', required: 'public', want: { kind: 'allow' } },
    {
      name: 'a public route ignores a wrong token',
      required: 'public',
      auth: 'Bearer nope',
      want: { kind: 'allow' },
    },
    {
      name: 'a public route is open even to a throttled address',
      required: 'public',
      throttled: 30,
      want: { kind: 'allow' },
    },
    {
      name: 'a read route without a header is 401 missing',
      required: 'read',
      want: { kind: 'unauthorized', reason: 'missing' },
    },
    {
      name: 'a Basic header is 401 invalid',
      required: 'read',
      auth: `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}`,
      want: { kind: 'unauthorized', reason: 'invalid' },
    },
    {
      name: 'a wrong bearer token is 401 invalid',
      required: 'read',
      auth: 'Bearer wrong-token-0123456789abcdef',
      want: { kind: 'unauthorized', reason: 'invalid' },
    },
    {
      name: 'a token that is a prefix of a real one is 401 invalid',
      required: 'read',
      auth: `Bearer ${READ.slice(0, -1)}`,
      want: { kind: 'unauthorized', reason: 'invalid' },
    },
    {
      name: 'the read token reads',
      required: 'read',
      auth: `Bearer ${READ}`,
      want: { kind: 'allow', principal: { name: 'viewer', role: 'read' } },
    },
    {
      name: 'the scheme is case-insensitive',
      required: 'read',
      auth: `bearer ${READ}`,
      want: { kind: 'allow', principal: { name: 'viewer', role: 'read' } },
    },
    {
      name: 'the admin token reads',
      required: 'read',
      auth: `Bearer ${ADMIN}`,
      want: { kind: 'allow', principal: { name: 'oncall', role: 'admin' } },
    },
    {
      name: 'the read token on an admin route is 403',
      required: 'admin',
      auth: `Bearer ${READ}`,
      want: { kind: 'forbidden', principal: { name: 'viewer', role: 'read' } },
    },
    {
      name: 'the admin token on an admin route is allowed',
      required: 'admin',
      auth: `Bearer ${ADMIN}`,
      want: { kind: 'allow', principal: { name: 'oncall', role: 'admin' } },
    },
    {
      name: 'a throttled address is refused before its token is looked at, even a right one',
      required: 'admin',
      auth: `Bearer ${ADMIN}`,
      throttled: 6,
      want: { kind: 'throttled', retryAfterSeconds: 6 },
    },
  ];
  for (const c of cases)
    test(c.name, () => assert.deepEqual(decide(c.required, c.auth, c.throttled ?? 0), c.want));

  test('with no tokens configured every protected route is refused', () => {
    for (const required of ['read', 'admin'] as const)
      assert.deepEqual(
        decideAccess({ required, authorization: `Bearer ${ADMIN}`, tokens: [], throttledForSeconds: 0 }),
        { kind: 'unauthorized', reason: 'invalid' },
      );
  });
});

describe('bearerToken and matchToken', () => {
  const headers: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['Bearer', undefined],
    ['Bearer ', undefined],
    ['Bearer a b', undefined],
    ['Bearer abc==', 'abc=='],
    ['Bearer  abc ', 'abc'],
    ['Token abc', undefined],
  ];
  for (const [header, want] of headers)
    test(`header ${JSON.stringify(header)} carries ${JSON.stringify(want)}`, () =>
      assert.equal(bearerToken(header), want));

  test('the first configured token with the presented value wins; others do not match', () => {
    assert.equal(matchToken(tokens, ADMIN)?.name, 'oncall');
    assert.equal(matchToken(tokens, READ)?.name, 'viewer');
    assert.equal(matchToken(tokens, ''), undefined);
    assert.equal(matchToken(tokens, 'x'.repeat(10_000)), undefined);
  });
});

describe('presentedAuthorization', () => {
  const cases: [string, Record<string, string | string[] | undefined>, string | undefined][] = [
    ['nothing', {}, undefined],
    ['Authorization as sent', { authorization: 'Bearer abc' }, 'Bearer abc'],
    ['X-Mailfleet-Token as a Bearer credential', { 'x-mailfleet-token': 'abc' }, 'Bearer abc'],
    [
      'Authorization wins over X-Mailfleet-Token',
      { authorization: 'Basic x', 'x-mailfleet-token': 'abc' },
      'Basic x',
    ],
    ['a repeated X-Mailfleet-Token is no token', { 'x-mailfleet-token': ['abc', 'abc'] }, 'Bearer'],
  ];
  for (const [name, headers, want] of cases)
    test(name, () => assert.equal(presentedAuthorization(headers), want));
  test('a token in X-Mailfleet-Token gets the same decision as in Authorization', () =>
    assert.deepEqual(decide('admin', presentedAuthorization({ 'x-mailfleet-token': ADMIN })), {
      kind: 'allow',
      principal: { name: 'oncall', role: 'admin' },
    }));
});

describe('failure bucket', () => {
  const policy: BucketPolicy = { burst: 3, refillMs: 6_000 };
  const fail = (times: number, at = 0): FailureBucket | undefined => {
    let bucket: FailureBucket | undefined;
    for (let i = 0; i < times; i++) bucket = afterFailedAttempt(bucket, at, policy);
    return bucket;
  };
  test('an address without failures may try', () => assert.equal(throttledFor(undefined, 0, policy), 0));
  test('failures up to the burst leave the address free to try until the last one', () => {
    assert.equal(throttledFor(fail(2), 0, policy), 0);
    assert.equal(throttledFor(fail(3), 0, policy), 6);
  });
  test('the wait shrinks as the bucket refills and ends after one refill period', () => {
    assert.equal(throttledFor(fail(3), 4_000, policy), 2);
    assert.equal(throttledFor(fail(3), 6_000, policy), 0);
  });
  test('further failures while empty keep it empty, not negative', () => {
    assert.deepEqual(fail(10), { tokens: 0, at: 0 });
  });
  test('a bucket is forgotten only once it has refilled completely', () => {
    const bucket = fail(3)!;
    assert.equal(isFull(bucket, 12_000, policy), false);
    assert.equal(isFull(bucket, 18_000, policy), true);
  });
});
