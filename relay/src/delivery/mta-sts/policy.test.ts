import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mxMatches,
  needsFetch,
  parseStsPolicy,
  parseStsRecord,
  stsPlan,
  usable,
  type CachedPolicy,
} from './policy.ts';
import { responseProblem } from './fetch.ts';

test('the _mta-sts TXT record (RFC 8461 §3.1)', async (t) => {
  const cases: { name: string; records: string[][]; want: string | undefined }[] = [
    { name: 'one record', records: [['v=STSv1; id=20260101T000000']], want: '20260101T000000' },
    { name: 'strings of one record are joined', records: [['v=STSv1; ', 'id=abc123']], want: 'abc123' },
    { name: 'other TXT records are ignored', records: [['v=spf1 -all'], ['v=STSv1; id=x1']], want: 'x1' },
    { name: 'two STS records: no policy', records: [['v=STSv1; id=a'], ['v=STSv1; id=b']], want: undefined },
    { name: 'no record: no policy', records: [], want: undefined },
    { name: 'no id: no policy', records: [['v=STSv1;']], want: undefined },
    { name: 'an id with punctuation is invalid', records: [['v=STSv1; id=a-b']], want: undefined },
    {
      name: 'an id over 32 characters is invalid',
      records: [[`v=STSv1; id=${'a'.repeat(33)}`]],
      want: undefined,
    },
    { name: 'the version must come first', records: [['id=a; v=STSv1;']], want: undefined },
  ];
  for (const c of cases) await t.test(c.name, () => assert.equal(parseStsRecord(c.records), c.want));
});

test('the policy file (RFC 8461 §3.2)', async (t) => {
  const cases: { name: string; text: string; want: unknown }[] = [
    {
      name: 'enforce with two MX patterns, CRLF',
      text: 'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n',
      want: { mode: 'enforce', mx: ['mx1.example.com', '*.example.net'], maxAge: 86400 },
    },
    {
      name: 'testing, LF, unknown keys ignored, MX names lower-cased',
      text: 'version: STSv1\nmode: testing\nmx: MX.Example.com\nfoo: bar\nmax_age: 60\n',
      want: { mode: 'testing', mx: ['mx.example.com'], maxAge: 60 },
    },
    {
      name: 'none needs no MX',
      text: 'version: STSv1\nmode: none\nmax_age: 60\n',
      want: { mode: 'none', mx: [], maxAge: 60 },
    },
    {
      name: 'wrong version',
      text: 'version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 60\n',
      want: 'version is not STSv1',
    },
    {
      name: 'unknown mode',
      text: 'version: STSv1\nmode: strict\nmx: a.b\nmax_age: 60\n',
      want: 'mode "strict" is not enforce, testing or none',
    },
    {
      name: 'max_age over a year',
      text: 'version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557601\n',
      want: 'max_age is not a number of seconds up to 31557600',
    },
    {
      name: 'max_age missing',
      text: 'version: STSv1\nmode: enforce\nmx: a.b\n',
      want: 'max_age is not a number of seconds up to 31557600',
    },
    {
      name: 'enforce without MX',
      text: 'version: STSv1\nmode: enforce\nmax_age: 60\n',
      want: 'no mx pattern',
    },
    { name: 'an HTML page', text: '<html><body>hello</body></html>', want: 'version is not STSv1' },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const r = parseStsPolicy(c.text);
      assert.deepEqual(r.ok ? r.value : r.error, c.want);
    });
  }
});

test('MX patterns (RFC 8461 §4.1)', async (t) => {
  const cases: [string, string, boolean][] = [
    ['mx1.example.com', 'mx1.example.com', true],
    ['mx1.example.com', 'MX1.example.com.', true],
    ['mx1.example.com', 'mx2.example.com', false],
    ['*.example.com', 'mx1.example.com', true],
    ['*.example.com', 'a.mx1.example.com', false],
    ['*.example.com', 'example.com', false],
  ];
  for (const [pattern, host, want] of cases)
    await t.test(`${pattern} ${want ? 'matches' : 'does not match'} ${host}`, () =>
      assert.equal(mxMatches(pattern, host), want),
    );
});

test('when a policy is fetched again (RFC 8461 §5.1)', async (t) => {
  const cached: CachedPolicy = {
    id: 'a',
    policy: { mode: 'enforce', mx: ['m.x'], maxAge: 10 },
    expiresAt: 10_000,
  };
  const cases: {
    name: string;
    cached?: CachedPolicy;
    id?: string;
    now: number;
    fetch: boolean;
    usable: boolean;
  }[] = [
    { name: 'nothing cached, a record: fetch', id: 'a', now: 0, fetch: true, usable: false },
    { name: 'nothing cached, no record: nothing to do', now: 0, fetch: false, usable: false },
    { name: 'same id, not expired: use the cache', cached, id: 'a', now: 5_000, fetch: false, usable: true },
    { name: 'a new id: fetch', cached, id: 'b', now: 5_000, fetch: true, usable: true },
    { name: 'same id, expired: fetch', cached, id: 'a', now: 10_000, fetch: true, usable: false },
    {
      name: 'the record gone, not expired: the cache still applies',
      cached,
      now: 5_000,
      fetch: false,
      usable: true,
    },
    { name: 'the record gone, expired: no policy', cached, now: 10_001, fetch: false, usable: false },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.equal(needsFetch(c.cached, c.id, c.now), c.fetch);
      assert.equal(usable(c.cached, c.now) !== undefined, c.usable);
    });
  }
});

test('what a policy allows of the MX hosts', () => {
  const mx = ['mx1.a.test', 'backup.b.test'];
  assert.deepEqual(stsPlan(undefined, mx), { mode: 'none' });
  assert.deepEqual(stsPlan({ mode: 'none', mx: [], maxAge: 1 }, mx), { mode: 'none' });
  assert.deepEqual(stsPlan({ mode: 'enforce', mx: ['*.a.test'], maxAge: 1 }, mx), {
    mode: 'enforce',
    allowed: ['mx1.a.test'],
  });
  assert.deepEqual(stsPlan({ mode: 'testing', mx: ['*.a.test'], maxAge: 1 }, mx), {
    mode: 'testing',
    mismatched: ['backup.b.test'],
  });
});

test('which policy responses are refused (RFC 8461 §3.2, §3.3)', async (t) => {
  const cases: [string, number, string | undefined, string | undefined][] = [
    ['200 text/plain', 200, 'text/plain', undefined],
    ['200 text/plain with a charset', 200, 'text/plain; charset=utf-8', undefined],
    ['a redirect is not followed', 301, 'text/html', 'HTTP 301'],
    ['not found', 404, 'text/plain', 'HTTP 404'],
    ['HTML', 200, 'text/html', 'Content-Type text/html is not text/plain'],
    ['no Content-Type', 200, undefined, 'Content-Type missing is not text/plain'],
  ];
  for (const [name, status, type, want] of cases)
    await t.test(name, () => assert.equal(responseProblem(status, type), want));
});
