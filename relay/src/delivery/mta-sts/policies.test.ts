// The policy cache with a fake clock, fake DNS answers and a fake fetch (the real HTTPS fetch is
// test/integration/relay-mta-sts.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StsPolicies, type StsDns } from './policies.ts';
import type { FetchResult } from './fetch.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StsPolicyFile } from './store.ts';

const policy = (mx: string, maxAge = 100) => `version: STSv1\nmode: enforce\nmx: ${mx}\nmax_age: ${maxAge}\n`;

function world() {
  const w = {
    now: 0,
    txt: [] as string[][],
    txtFails: false,
    body: { ok: true, body: policy('mx.a.test') } as FetchResult,
    fetches: 0,
  };
  const dns: StsDns = {
    resolveTxt: async () => {
      if (w.txtFails) throw Object.assign(new Error('ESERVFAIL'), { code: 'ESERVFAIL' });
      return w.txt;
    },
    resolve4: async () => ['127.0.0.1'],
    resolve6: async () => [],
  };
  const sts = new StsPolicies({
    now: () => w.now,
    fetch: async () => {
      w.fetches++;
      return w.body;
    },
  });
  return { w, dns, sts };
}

test('a published policy is fetched once and cached while its id stays', async () => {
  const { w, dns, sts } = world();
  w.txt = [['v=STSv1; id=one']];
  assert.deepEqual((await sts.lookup('a.test', dns)).policy?.mx, ['mx.a.test']);
  w.body = { ok: true, body: policy('other.a.test') };
  w.now = 50_000;
  assert.deepEqual((await sts.lookup('a.test', dns)).policy?.mx, ['mx.a.test']);
  assert.equal(w.fetches, 1);
});

test('a new id fetches the new policy', async () => {
  const { w, dns, sts } = world();
  w.txt = [['v=STSv1; id=one']];
  await sts.lookup('a.test', dns);
  w.txt = [['v=STSv1; id=two']];
  w.body = { ok: true, body: policy('other.a.test') };
  assert.deepEqual((await sts.lookup('a.test', dns)).policy?.mx, ['other.a.test']);
  assert.equal(w.fetches, 2);
});

test('an expired policy is fetched again', async () => {
  const { w, dns, sts } = world();
  w.txt = [['v=STSv1; id=one']];
  await sts.lookup('a.test', dns);
  w.now = 100_000;
  await sts.lookup('a.test', dns);
  assert.equal(w.fetches, 2);
});

test('without a TXT answer (gone, or DNS failing) the cached policy applies until it expires', async () => {
  const { w, dns, sts } = world();
  w.txt = [['v=STSv1; id=one']];
  await sts.lookup('a.test', dns);
  w.txtFails = true;
  w.now = 99_000;
  assert.equal((await sts.lookup('a.test', dns)).policy?.mode, 'enforce');
  w.now = 100_000;
  assert.equal((await sts.lookup('a.test', dns)).policy, undefined);
});

test('a failed fetch keeps the cached policy, or reports the failure when none is cached', async () => {
  const { w, dns, sts } = world();
  w.txt = [['v=STSv1; id=one']];
  w.body = { ok: false, failure: 'sts-webpki-invalid', detail: 'CERT_HAS_EXPIRED' };
  assert.deepEqual(await sts.lookup('a.test', dns), {
    policy: undefined,
    failure: 'sts-webpki-invalid',
    detail: 'CERT_HAS_EXPIRED',
  });
  w.body = { ok: true, body: policy('mx.a.test') };
  await sts.lookup('a.test', dns);
  w.txt = [['v=STSv1; id=two']];
  w.body = { ok: false, failure: 'sts-policy-fetch-error', detail: 'HTTP 404' };
  assert.deepEqual((await sts.lookup('a.test', dns)).policy?.mx, ['mx.a.test']);
});

test('an invalid policy file is reported and not cached', async () => {
  const { w, dns, sts } = world();
  w.txt = [['v=STSv1; id=one']];
  w.body = { ok: true, body: '<html></html>' };
  const r = await sts.lookup('a.test', dns);
  assert.equal(r.policy, undefined);
  assert.equal(r.failure, 'sts-policy-invalid');
  w.body = { ok: true, body: policy('mx.a.test') };
  assert.equal((await sts.lookup('a.test', dns)).policy?.mode, 'enforce');
});

test('lookups of one domain at the same time share one fetch', async () => {
  const { w, dns, sts } = world();
  w.txt = [['v=STSv1; id=one']];
  await Promise.all([sts.lookup('a.test', dns), sts.lookup('A.test', dns), sts.lookup('a.test', dns)]);
  assert.equal(w.fetches, 1);
});

// The store behind the memory: the real policy file (store.ts) in a temporary directory, shared
// by two caches the way the pool's store is shared by two relays.
async function withStore(run: (store: StsPolicyFile, path: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'mta-sts-'));
  try {
    await run(new StsPolicyFile(join(dir, 'mta-sts.json'), () => 0), join(dir, 'mta-sts.json'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a policy another cache fetched is taken from the store: not fetched, in force while the host is down', () =>
  withStore(async (store) => {
    const a = world();
    const b = world();
    a.sts.store = store;
    b.sts.store = store;
    a.w.txt = b.w.txt = [['v=STSv1; id=one']];
    await a.sts.lookup('a.test', a.dns);
    b.w.body = { ok: false, failure: 'sts-policy-fetch-error', detail: 'ECONNREFUSED' };
    assert.deepEqual((await b.sts.lookup('a.test', b.dns)).policy?.mx, ['mx.a.test']);
    assert.equal(b.w.fetches, 0);
    // DNS failing too: the stored policy still applies (§5.1).
    b.w.txtFails = true;
    const c = world();
    c.sts.store = store;
    c.w.txtFails = true;
    assert.equal((await c.sts.lookup('a.test', c.dns)).policy?.mode, 'enforce');
  }));

test('a stored policy of another id, or expired, is fetched again and the store updated', () =>
  withStore(async (store) => {
    const a = world();
    a.sts.store = store;
    a.w.txt = [['v=STSv1; id=one']];
    await a.sts.lookup('a.test', a.dns);
    const b = world();
    b.sts.store = store;
    b.w.txt = [['v=STSv1; id=two']];
    b.w.body = { ok: true, body: policy('mx2.a.test') };
    assert.deepEqual((await b.sts.lookup('a.test', b.dns)).policy?.mx, ['mx2.a.test']);
    assert.equal(b.w.fetches, 1);
    assert.equal((await store.get('a.test'))?.id, 'two');
    const c = world();
    c.sts.store = store;
    c.w.txt = [['v=STSv1; id=two']];
    c.w.now = 100_000;
    await c.sts.lookup('a.test', c.dns);
    assert.equal(c.w.fetches, 1);
  }));

test('a store that does not answer is as if empty: the policy is fetched', async () => {
  const { w, dns, sts } = world();
  sts.store = {
    get: () => Promise.reject(new Error('store down')),
    put: () => Promise.reject(new Error('store down')),
  };
  w.txt = [['v=STSv1; id=one']];
  assert.equal((await sts.lookup('a.test', dns)).policy?.mode, 'enforce');
  assert.equal(w.fetches, 1);
});
