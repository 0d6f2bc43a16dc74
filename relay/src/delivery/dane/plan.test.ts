import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostTlsPlan } from './plan.ts';
import type { DaneLookup } from './lookup.ts';
import type { DaneHost } from './tlsa.ts';
import type { DirectTlsPlan } from '../tls-policy.ts';

const RECORD = { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 7) };
const DANE: DaneHost = { kind: 'dane', records: [RECORD], addresses: ['127.0.0.9'], base: 'a.test' };
/** a.test is a CNAME to mx.provider.test, whose TLSA records apply. */
const DANE_AT_TARGET: DaneHost = { ...DANE, base: 'mx.provider.test' };
const NONE: DaneHost = { kind: 'none', reason: 'no TLSA records' };
const FAILED: DaneHost = { kind: 'failure', detail: 'TLSA lookup SERVFAIL' };

const enforce = (hosts: string[]): DirectTlsPlan => ({
  applied: 'mta-sts',
  requirement: 'verify',
  reportOnly: false,
  hosts,
  mismatched: [],
});
const opportunistic = (hosts: string[]): DirectTlsPlan => ({
  applied: 'opportunistic',
  requirement: 'none',
  reportOnly: false,
  hosts,
  mismatched: [],
});
const lookup = (hosts: Record<string, DaneHost>, mxSecure = true): DaneLookup => ({
  mxSecure,
  hosts: new Map(Object.entries(hosts)),
});

const CASES: {
  name: string;
  mx: string[];
  fallback: DirectTlsPlan;
  dane?: DaneLookup;
  want: { name: string; policy: string; requirement: string; names?: string[] }[];
  excluded?: string[];
}[] = [
  {
    name: 'without a DANE lookup the fallback plan decides',
    mx: ['a.test', 'b.test'],
    fallback: enforce(['b.test']),
    want: [{ name: 'b.test', policy: 'mta-sts', requirement: 'verify' }],
  },
  {
    name: 'a host with TLSA records gets DANE even where MTA-STS would leave it out (DANE first)',
    mx: ['a.test', 'b.test'],
    fallback: enforce(['b.test']),
    dane: lookup({ 'a.test': DANE, 'b.test': NONE }),
    want: [
      { name: 'a.test', policy: 'dane', requirement: 'dane', names: ['a.test', 'example.test'] },
      { name: 'b.test', policy: 'mta-sts', requirement: 'verify' },
    ],
  },
  {
    name: 'an insecure MX RRset leaves only the MX host name for DANE-TA',
    mx: ['a.test'],
    fallback: opportunistic(['a.test']),
    dane: lookup({ 'a.test': DANE }, false),
    want: [{ name: 'a.test', policy: 'dane', requirement: 'dane', names: ['a.test'] }],
  },
  {
    name: 'a CNAME to a host with TLSA records: its target, the MX host name and the domain are reference names',
    mx: ['a.test'],
    fallback: opportunistic(['a.test']),
    dane: lookup({ 'a.test': DANE_AT_TARGET }),
    want: [
      {
        name: 'a.test',
        policy: 'dane',
        requirement: 'dane',
        names: ['mx.provider.test', 'a.test', 'example.test'],
      },
    ],
  },
  {
    name: 'a CNAME with an insecure MX RRset: its target and the MX host name only',
    mx: ['a.test'],
    fallback: opportunistic(['a.test']),
    dane: lookup({ 'a.test': DANE_AT_TARGET }, false),
    want: [{ name: 'a.test', policy: 'dane', requirement: 'dane', names: ['mx.provider.test', 'a.test'] }],
  },
  {
    name: 'a host whose DANE lookup failed is skipped, never downgraded',
    mx: ['a.test', 'b.test'],
    fallback: opportunistic(['a.test', 'b.test']),
    dane: lookup({ 'a.test': FAILED, 'b.test': NONE }),
    want: [{ name: 'b.test', policy: 'opportunistic', requirement: 'none' }],
    excluded: ['a.test'],
  },
  {
    name: 'secure but unusable TLSA records still require TLS',
    mx: ['a.test'],
    fallback: opportunistic(['a.test']),
    dane: lookup({ 'a.test': { kind: 'encrypt', addresses: ['127.0.0.9'] } }),
    want: [{ name: 'a.test', policy: 'dane', requirement: 'encrypt' }],
  },
];

for (const c of CASES) {
  test(`hostTlsPlan: ${c.name}`, () => {
    const plan = hostTlsPlan('example.test', c.mx, c.fallback, c.dane);
    assert.deepEqual(
      plan.hosts.map((h) => ({
        name: h.name,
        policy: h.policy,
        requirement: h.requirement,
        ...(h.dane ? { names: h.dane.names } : {}),
      })),
      c.want,
    );
    assert.deepEqual(
      plan.excluded.map((x) => x.name),
      c.excluded ?? [],
    );
    for (const x of plan.excluded) assert.equal(x.failure, 'dnssec-invalid');
  });
}
