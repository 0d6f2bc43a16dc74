import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeDomain, type DnsClient } from './mx.ts';

function fakeDns(zone: {
  mx?: Record<string, [string, number][] | string>;
  a?: Record<string, string[]>;
}): DnsClient {
  const fail = (code: string) => Promise.reject(Object.assign(new Error(code), { code }));
  return {
    resolveMx: (d) => {
      const v = zone.mx?.[d];
      if (typeof v === 'string') return fail(v);
      return v ? Promise.resolve(v.map(([exchange, priority]) => ({ exchange, priority }))) : fail('ENODATA');
    },
    resolve4: (n) => (zone.a?.[n] ? Promise.resolve(zone.a[n]) : fail('ENODATA')),
    resolve6: () => fail('ENODATA'),
  };
}

test('MX hosts come in preference order', async () => {
  const dns = fakeDns({
    mx: {
      'example.test': [
        ['mx2.example.test', 20],
        ['mx1.example.test', 10],
      ],
    },
    a: { 'mx1.example.test': ['127.0.0.2'], 'mx2.example.test': ['127.0.0.3'] },
  });
  const r = await routeDomain('example.test', dns);
  assert.ok(r.ok);
  assert.deepEqual(
    r.hosts.map((h) => h.name),
    ['mx1.example.test', 'mx2.example.test'],
  );
});

test('a domain without MX falls back to its own A record', async () => {
  const r = await routeDomain('plain.test', fakeDns({ a: { 'plain.test': ['127.0.0.4'] } }));
  assert.ok(r.ok);
  assert.deepEqual(r.hosts, [{ name: 'plain.test', addresses: ['127.0.0.4'] }]);
});

test('NXDOMAIN is a permanent bad-domain failure', async () => {
  const r = await routeDomain('nope.test', fakeDns({ mx: { 'nope.test': 'ENOTFOUND' } }));
  assert.deepEqual(r, { ok: false, permanent: true, reply: '550 5.1.2 nope.test: domain not found' });
});

test('a DNS timeout is transient', async () => {
  const r = await routeDomain('slow.test', fakeDns({ mx: { 'slow.test': 'ETIMEOUT' } }));
  assert.equal(r.ok === false && r.permanent, false);
});

test('a null MX is permanent (RFC 7505)', async () => {
  const r = await routeDomain('null.test', fakeDns({ mx: { 'null.test': [['', 0]] } }));
  assert.equal(r.ok === false && r.reply.startsWith('556 5.1.10'), true);
});

test('an MX host without address is skipped', async () => {
  const dns = fakeDns({
    mx: {
      'x.test': [
        ['dead.x.test', 5],
        ['live.x.test', 10],
      ],
    },
    a: { 'live.x.test': ['127.0.0.5'] },
  });
  const r = await routeDomain('x.test', dns);
  assert.ok(r.ok);
  assert.deepEqual(
    r.hosts.map((h) => h.name),
    ['live.x.test'],
  );
});

test('no MX and a failing A lookup (SERVFAIL) is transient, not a bounce', async () => {
  const dns: DnsClient = {
    resolveMx: () => Promise.reject(Object.assign(new Error('ENODATA'), { code: 'ENODATA' })),
    resolve4: () => Promise.reject(Object.assign(new Error('ESERVFAIL'), { code: 'ESERVFAIL' })),
    resolve6: () => Promise.reject(Object.assign(new Error('ENODATA'), { code: 'ENODATA' })),
  };
  assert.deepEqual(await routeDomain('flaky.test', dns), {
    ok: false,
    permanent: false,
    reply: '451 4.4.3 flaky.test: DNS ESERVFAIL',
  });
});

test('no MX and no address record at all is a bounce', async () => {
  const r = await routeDomain('empty.test', fakeDns({}));
  assert.deepEqual(r, {
    ok: false,
    permanent: true,
    reply: '550 5.1.2 empty.test: no MX and no address record',
  });
});
