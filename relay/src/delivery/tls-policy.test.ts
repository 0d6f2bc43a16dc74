import { test } from 'node:test';
import assert from 'node:assert/strict';
import { directTlsPlan, judgeTls, policyFor, type TlsFacts, type TlsRequirement } from './tls-policy.ts';
import type { StsPlan } from './mta-sts/policy.ts';
import type { OutboundTlsConfig } from '../config/types.ts';

const config = (over: Partial<OutboundTlsConfig> = {}): OutboundTlsConfig => ({
  default: 'opportunistic',
  destinations: [],
  daneResolver: '',
  ...over,
});

test('the policy of a recipient domain', async (t) => {
  const cases: { name: string; config: OutboundTlsConfig; domain: string; want: string }[] = [
    {
      name: 'no override: the default',
      config: config({ default: 'encrypt' }),
      domain: 'a.test',
      want: 'encrypt',
    },
    {
      name: 'exact override',
      config: config({ destinations: [{ domain: 'partner.test', policy: 'verify' }] }),
      domain: 'partner.test',
      want: 'verify',
    },
    {
      name: 'domains are compared without case',
      config: config({ destinations: [{ domain: 'partner.test', policy: 'verify' }] }),
      domain: 'Partner.TEST',
      want: 'verify',
    },
    {
      name: 'an exact override does not cover subdomains',
      config: config({ destinations: [{ domain: 'partner.test', policy: 'verify' }] }),
      domain: 'eu.partner.test',
      want: 'opportunistic',
    },
    {
      name: 'a wildcard covers subdomains',
      config: config({ destinations: [{ domain: '*.partner.test', policy: 'encrypt' }] }),
      domain: 'eu.partner.test',
      want: 'encrypt',
    },
    {
      name: 'a wildcard does not cover the domain itself',
      config: config({ destinations: [{ domain: '*.partner.test', policy: 'encrypt' }] }),
      domain: 'partner.test',
      want: 'opportunistic',
    },
    {
      name: 'an exact override wins over an earlier wildcard',
      config: config({
        destinations: [
          { domain: '*.partner.test', policy: 'encrypt' },
          { domain: 'eu.partner.test', policy: 'verify' },
        ],
      }),
      domain: 'eu.partner.test',
      want: 'verify',
    },
  ];
  for (const c of cases) await t.test(c.name, () => assert.equal(policyFor(c.domain, c.config), c.want));
});

test('what a delivery must do under each policy', async (t) => {
  const mx = ['mx1.a.test', 'mx2.a.test'];
  const cases: {
    name: string;
    policy: 'opportunistic' | 'encrypt' | 'verify' | 'mta-sts';
    sts?: StsPlan;
    want: {
      applied: string;
      requirement: string;
      reportOnly: boolean;
      hosts: string[];
      mismatched: string[];
    };
  }[] = [
    {
      name: 'opportunistic: every MX, nothing required',
      policy: 'opportunistic',
      want: { applied: 'opportunistic', requirement: 'none', reportOnly: false, hosts: mx, mismatched: [] },
    },
    {
      name: 'encrypt: every MX, TLS required',
      policy: 'encrypt',
      want: { applied: 'encrypt', requirement: 'encrypt', reportOnly: false, hosts: mx, mismatched: [] },
    },
    {
      name: 'verify: every MX, verified TLS required',
      policy: 'verify',
      want: { applied: 'verify', requirement: 'verify', reportOnly: false, hosts: mx, mismatched: [] },
    },
    {
      name: 'mta-sts, no policy published: opportunistic',
      policy: 'mta-sts',
      sts: { mode: 'none' },
      want: { applied: 'opportunistic', requirement: 'none', reportOnly: false, hosts: mx, mismatched: [] },
    },
    {
      name: 'mta-sts, no lookup made: opportunistic',
      policy: 'mta-sts',
      want: { applied: 'opportunistic', requirement: 'none', reportOnly: false, hosts: mx, mismatched: [] },
    },
    {
      name: 'mta-sts enforce: only the listed MX hosts, verified',
      policy: 'mta-sts',
      sts: { mode: 'enforce', allowed: ['mx2.a.test'] },
      want: {
        applied: 'mta-sts',
        requirement: 'verify',
        reportOnly: false,
        hosts: ['mx2.a.test'],
        mismatched: [],
      },
    },
    {
      name: 'mta-sts enforce, no MX listed: no host may be tried',
      policy: 'mta-sts',
      sts: { mode: 'enforce', allowed: [] },
      want: { applied: 'mta-sts', requirement: 'verify', reportOnly: false, hosts: [], mismatched: [] },
    },
    {
      name: 'mta-sts testing: every MX, failures only reported',
      policy: 'mta-sts',
      sts: { mode: 'testing', mismatched: ['mx1.a.test'] },
      want: {
        applied: 'mta-sts-testing',
        requirement: 'verify',
        reportOnly: true,
        hosts: mx,
        mismatched: ['mx1.a.test'],
      },
    },
  ];
  for (const c of cases)
    await t.test(c.name, () => assert.deepEqual(directTlsPlan(c.policy, c.sts, mx), c.want));
});

test('whether a connection meets its requirement', async (t) => {
  const clear: TlsFacts = { secure: false, authorized: false };
  const verified: TlsFacts = { secure: true, authorized: true };
  const failed = (code: string): TlsFacts => ({ secure: true, authorized: false, authorizationError: code });
  const cases: { name: string; requirement: TlsRequirement; facts: TlsFacts; want: string }[] = [
    { name: 'opportunistic accepts clear text', requirement: 'none', facts: clear, want: 'ok' },
    {
      name: 'opportunistic accepts a self-signed certificate',
      requirement: 'none',
      facts: failed('DEPTH_ZERO_SELF_SIGNED_CERT'),
      want: 'ok',
    },
    {
      name: 'encrypt refuses clear text',
      requirement: 'encrypt',
      facts: clear,
      want: 'starttls-not-supported',
    },
    {
      name: 'encrypt accepts an untrusted certificate',
      requirement: 'encrypt',
      facts: failed('DEPTH_ZERO_SELF_SIGNED_CERT'),
      want: 'ok',
    },
    {
      name: 'verify refuses clear text',
      requirement: 'verify',
      facts: clear,
      want: 'starttls-not-supported',
    },
    {
      name: 'verify accepts a trusted certificate naming the host',
      requirement: 'verify',
      facts: verified,
      want: 'ok',
    },
    {
      name: 'verify: a self-signed certificate is not trusted',
      requirement: 'verify',
      facts: failed('DEPTH_ZERO_SELF_SIGNED_CERT'),
      want: 'certificate-not-trusted',
    },
    {
      name: 'verify: an unknown issuer is not trusted',
      requirement: 'verify',
      facts: failed('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
      want: 'certificate-not-trusted',
    },
    {
      name: 'verify: a certificate for another name',
      requirement: 'verify',
      facts: failed('ERR_TLS_CERT_ALTNAME_INVALID'),
      want: 'certificate-host-mismatch',
    },
    {
      name: 'verify: an expired certificate',
      requirement: 'verify',
      facts: failed('CERT_HAS_EXPIRED'),
      want: 'certificate-expired',
    },
    {
      name: 'verify: a certificate not valid yet',
      requirement: 'verify',
      facts: failed('CERT_NOT_YET_VALID'),
      want: 'certificate-expired',
    },
    {
      name: 'verify: any other verification error',
      requirement: 'verify',
      facts: failed('CERT_SIGNATURE_FAILURE'),
      want: 'validation-failure',
    },
    {
      name: 'verify: not authorized without a reason still fails',
      requirement: 'verify',
      facts: { secure: true, authorized: false },
      want: 'validation-failure',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const v = judgeTls(c.requirement, c.facts);
      assert.equal(v.ok ? 'ok' : v.failure, c.want);
    });
  }
});
