import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { daneHost, matchDane, type TlsaRecord } from './tlsa.ts';
import type { SecureAnswer } from './resolver.ts';

// Fixed certificates made once with openssl (EC P-256, valid 100 years from 2026-12-05): a CA, a
// server certificate it issued for mx.example.test, a self-signed one, and another CA with the
// same name as the first but its own key.
const CA = `-----BEGIN CERTIFICATE-----
MIIBhDCCASugAwIBAgIUKfd9TpGo4evNLOXfVAmVMAMox98wCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMZGFuZSB0ZXN0IENBMCAXDTI2MTIwNTIwNTgwOVoYDzIxMjYx
MTExMjA1ODA5WjAXMRUwEwYDVQQDDAxkYW5lIHRlc3QgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQv+Rt23TNu/Gc0kHFy00lBryP2IasSs+zz58CCknMY7xzp
YacghqwWgytrLlvp+e7MMJ0TtIuyLqEEvc7SqOtho1MwUTAdBgNVHQ4EFgQUWtzd
4cowkY7TE1TtiJm/e8XdRpgwHwYDVR0jBBgwFoAUWtzd4cowkY7TE1TtiJm/e8Xd
RpgwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAsmFmW++Rtrhmp
jhoPxokPcPEJ5VexGOY7o4ySPmCk9gIgZsUuAxNU28dlNC9HHtF2IXcouiCSFJ/r
Qxc11bttYaY=
-----END CERTIFICATE-----`;
const LEAF = `-----BEGIN CERTIFICATE-----
MIIBgDCCASagAwIBAgIBBzAKBggqhkjOPQQDAjAXMRUwEwYDVQQDDAxkYW5lIHRl
c3QgQ0EwIBcNMjYxMjA1MjA1ODA5WhgPMjEyNjExMTEyMDU4MDlaMBoxGDAWBgNV
BAMMD214LmV4YW1wbGUudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCg9
LAalAGLdDVup57LY5VdSdwkeLOVpMrqzV1xkFO0h6HEQb8bOfqS2EgRfm70+SOSK
Et0n2JKlw3hRbGlOO4qjXjBcMBoGA1UdEQQTMBGCD214LmV4YW1wbGUudGVzdDAd
BgNVHQ4EFgQUZMhnXegZLEwXsTndB2GyA2nGGEwwHwYDVR0jBBgwFoAUWtzd4cow
kY7TE1TtiJm/e8XdRpgwCgYIKoZIzj0EAwIDSAAwRQIhALk+n/74ENTp+cZtiJxG
9Ylo7r2SiAWD8WDWDOD8Y999AiBYHfyvsh8ffjKgFy+X8LeSHfoyYLj9cTcxjMff
xUELRg==
-----END CERTIFICATE-----`;
const SELF_SIGNED = `-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUVgk+em+TzRTbjyNn/2R5u9xQTqEwCgYIKoZIzj0EAwIw
EDEOMAwGA1UEAwwFb3RoZXIwIBcNMjYxMjA1MjA1ODA5WhgPMjEyNjExMTEyMDU4
MDlaMBAxDjAMBgNVBAMMBW90aGVyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
7l8ZPCNTbGxJEFXde/B69ZyKgV1b97CiZQxeP6erbEJsJoUejNJ7+QrEna4cYorQ
D4inXDM+9ZRevFg0qN0776NTMFEwHQYDVR0OBBYEFL1Xnr1Xi80d9z+cvj/RFH3V
uvPWMB8GA1UdIwQYMBaAFL1Xnr1Xi80d9z+cvj/RFH3VuvPWMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgQJ72uCW/Q9+wgb4zpIYAHvs3QuHl1E/r
2RTlRtsaPVMCIQD+W+xVQLDGaBKzL3xNTn2cYVBZxPB/wmUWCYXCVW0c0Q==
-----END CERTIFICATE-----`;
const IMPOSTOR_CA = `-----BEGIN CERTIFICATE-----
MIIBhDCCASugAwIBAgIUR02mEVrSYDmBrA4+dBmXmLvK2B4wCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMZGFuZSB0ZXN0IENBMCAXDTI2MTIwNTIwNTgwOVoYDzIxMjYx
MTExMjA1ODA5WjAXMRUwEwYDVQQDDAxkYW5lIHRlc3QgQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASw2/AqTmTPtICZHx9+9tBtAaQUFE+K2maUx5shEc7K9TCs
QejaXyq1TDFYc6y8QTE6fV5RgZZ3mRY8Hf/g/E3zo1MwUTAdBgNVHQ4EFgQU+RvB
iMhpGcx/TPwqAvYGtbWN970wHwYDVR0jBBgwFoAU+RvBiMhpGcx/TPwqAvYGtbWN
970wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiA5fZf7O5+n0CBz
kzyyXXARZP9lO9sz6s8n5b7lkCYIDAIgcXzgyrj0UJ0Cuv4Z/rgEYzazgXfrhyn1
AQycZWNheAI=
-----END CERTIFICATE-----`;

const der = (pem: string) => new X509Certificate(pem).raw;
const spki = (pem: string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest();
const tlsa = (usage: number, selector: number, matchingType: number, data: Buffer): TlsaRecord => ({
  usage,
  selector,
  matchingType,
  data,
});
const NOW = new Date('2027-01-01T00:00:00Z');

const MATCH_CASES: {
  name: string;
  records: TlsaRecord[];
  chain: string[];
  names?: string[];
  now?: Date;
  ok: boolean;
  detail?: RegExp;
}[] = [
  {
    name: 'DANE-EE SPKI SHA-256 authenticates a self-signed certificate with any name',
    records: [tlsa(3, 1, 1, sha256(spki(SELF_SIGNED)))],
    chain: [SELF_SIGNED],
    ok: true,
  },
  {
    name: 'DANE-EE full certificate SHA-512',
    records: [tlsa(3, 0, 2, sha512(der(LEAF)))],
    chain: [LEAF, CA],
    ok: true,
  },
  {
    name: 'DANE-EE exact SPKI',
    records: [tlsa(3, 1, 0, spki(LEAF))],
    chain: [LEAF],
    ok: true,
  },
  {
    name: 'DANE-EE ignores the validity dates (RFC 7672 §3.1.1)',
    records: [tlsa(3, 1, 1, sha256(spki(LEAF)))],
    chain: [LEAF],
    now: new Date('2200-01-01T00:00:00Z'),
    ok: true,
  },
  {
    name: 'DANE-EE of another key does not match',
    records: [tlsa(3, 1, 1, sha256(spki(SELF_SIGNED)))],
    chain: [LEAF, CA],
    ok: false,
    detail: /no certificate/,
  },
  {
    name: 'DANE-TA: the issuer in the chain matches and the certificate names the MX host',
    records: [tlsa(2, 0, 1, sha256(der(CA)))],
    chain: [LEAF, CA],
    ok: true,
  },
  {
    name: 'DANE-TA SPKI SHA-512 of the issuer',
    records: [tlsa(2, 1, 2, sha512(spki(CA)))],
    chain: [LEAF, CA],
    ok: true,
  },
  {
    name: 'DANE-TA: a certificate for another name fails',
    records: [tlsa(2, 0, 1, sha256(der(CA)))],
    chain: [LEAF, CA],
    names: ['mx.other.test'],
    ok: false,
    detail: /names none of mx\.other\.test/,
  },
  {
    name: 'DANE-TA: the next-hop domain counts when it is among the names',
    records: [tlsa(2, 0, 1, sha256(der(CA)))],
    chain: [LEAF, CA],
    names: ['mx.other.test', 'mx.example.test'],
    ok: true,
  },
  {
    name: 'DANE-TA: an issuer with the same name but another key does not vouch for the certificate',
    records: [tlsa(2, 0, 1, sha256(der(IMPOSTOR_CA)))],
    chain: [LEAF, IMPOSTOR_CA],
    ok: false,
    detail: /not signed by the next/,
  },
  {
    name: 'DANE-TA: the server certificate itself is not a trust anchor',
    records: [tlsa(2, 0, 1, sha256(der(LEAF)))],
    chain: [LEAF, CA],
    ok: false,
    detail: /no certificate/,
  },
  {
    name: 'DANE-TA: an expired server certificate fails',
    records: [tlsa(2, 0, 1, sha256(der(CA)))],
    chain: [LEAF, CA],
    now: new Date('2200-01-01T00:00:00Z'),
    ok: false,
    detail: /validity dates/,
  },
  {
    name: 'no certificate at all fails',
    records: [tlsa(3, 1, 1, sha256(spki(LEAF)))],
    chain: [],
    ok: false,
    detail: /no server certificate/,
  },
];

for (const c of MATCH_CASES) {
  test(`matchDane: ${c.name}`, () => {
    const verdict = matchDane(
      { records: c.records, names: c.names ?? ['mx.example.test'] },
      c.chain.map(der),
      c.now ?? NOW,
    );
    assert.equal(verdict.ok, c.ok);
    if (!verdict.ok && c.detail) assert.match(verdict.detail, c.detail);
  });
}

const answer = (over: Partial<SecureAnswer> = {}): SecureAnswer => ({
  rcode: 'NOERROR',
  authenticated: true,
  answers: [],
  ...over,
});
const a = (address: string, authenticated = true) =>
  answer({ authenticated, answers: [{ type: 'A', name: 'mx.example.test', data: address }] });
const tlsaAnswer = (records: TlsaRecord[], authenticated = true) =>
  answer({
    authenticated,
    answers: records.map((r) => ({
      type: 'TLSA' as const,
      name: '_25._tcp.mx.example.test',
      data: { usage: r.usage, selector: r.selector, matchingType: r.matchingType, certificate: r.data },
    })),
  });
const EE = tlsa(3, 1, 1, Buffer.alloc(32, 1));
const PKIX_EE = tlsa(1, 1, 1, Buffer.alloc(32, 2));

const HOST_CASES: {
  name: string;
  a: SecureAnswer;
  aaaa?: SecureAnswer;
  tlsa: SecureAnswer;
  kind: string;
  records?: number;
}[] = [
  {
    name: 'validated address and TLSA: DANE',
    a: a('127.0.0.1'),
    tlsa: tlsaAnswer([EE]),
    kind: 'dane',
    records: 1,
  },
  { name: 'TLSA not validated: no DANE', a: a('127.0.0.1'), tlsa: tlsaAnswer([EE], false), kind: 'none' },
  { name: 'address not validated: no DANE', a: a('127.0.0.1', false), tlsa: tlsaAnswer([EE]), kind: 'none' },
  {
    name: 'validated denial of TLSA: no DANE',
    a: a('127.0.0.1'),
    tlsa: answer({ rcode: 'NXDOMAIN' }),
    kind: 'none',
  },
  {
    name: 'TLSA lookup SERVFAIL (bogus): the host is unusable',
    a: a('127.0.0.1'),
    tlsa: answer({ rcode: 'SERVFAIL', authenticated: false }),
    kind: 'failure',
  },
  {
    name: 'TLSA lookup timed out: the host is unusable',
    a: a('127.0.0.1'),
    tlsa: answer({ rcode: 'ETIMEOUT', authenticated: false }),
    kind: 'failure',
  },
  {
    name: 'both address lookups failed: the host is unusable',
    a: answer({ rcode: 'SERVFAIL', authenticated: false }),
    aaaa: answer({ rcode: 'SERVFAIL', authenticated: false }),
    tlsa: tlsaAnswer([EE]),
    kind: 'failure',
  },
  {
    name: 'only PKIX usages: TLS required, unauthenticated (RFC 7672 §3.1.3)',
    a: a('127.0.0.1'),
    tlsa: tlsaAnswer([PKIX_EE]),
    kind: 'encrypt',
  },
  {
    name: 'unusable records are dropped, usable ones kept',
    a: a('127.0.0.1'),
    tlsa: tlsaAnswer([PKIX_EE, EE, tlsa(3, 1, 9, Buffer.alloc(1))]),
    kind: 'dane',
    records: 1,
  },
];

for (const c of HOST_CASES) {
  test(`daneHost: ${c.name}`, () => {
    const host = daneHost({ a: c.a, aaaa: c.aaaa ?? answer() }, c.tlsa, 'mx.example.test');
    assert.equal(host.kind, c.kind);
    if (host.kind === 'dane') {
      assert.equal(host.records.length, c.records);
      assert.deepEqual(host.addresses, ['127.0.0.1']);
      assert.equal(host.base, 'mx.example.test');
    }
  });
}
