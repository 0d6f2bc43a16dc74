import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daneHostAt, expandedName } from './cname.ts';
import type { SecureAnswer } from './resolver.ts';
import type { TlsaRecord } from './tlsa.ts';

const answer = (over: Partial<SecureAnswer> = {}): SecureAnswer => ({
  rcode: 'NOERROR',
  authenticated: true,
  answers: [],
  ...over,
});
const cname = (name: string, data: string) => ({ type: 'CNAME' as const, name, data });
const a = (name: string, data: string) => ({ type: 'A' as const, name, data });

const EXPAND_CASES: { name: string; answers: SecureAnswer[]; want: string | undefined }[] = [
  {
    name: 'a host name with its own address records is no CNAME',
    answers: [answer({ answers: [a('mx.example.test', '192.0.2.1')] })],
    want: undefined,
  },
  {
    name: 'one CNAME: its target',
    answers: [
      answer({
        answers: [cname('mx.example.test', 'mx.provider.test'), a('mx.provider.test', '192.0.2.1')],
      }),
    ],
    want: 'mx.provider.test',
  },
  {
    name: 'a chain of CNAMEs: its last name',
    answers: [
      answer({
        answers: [
          cname('mx.example.test', 'mail.hoster.test'),
          cname('mail.hoster.test', 'mx.provider.test'),
          a('mx.provider.test', '192.0.2.1'),
        ],
      }),
    ],
    want: 'mx.provider.test',
  },
  {
    name: 'names compare without case or the final dot',
    answers: [answer({ answers: [cname('MX.Example.Test.', 'Mx.Provider.Test.')] })],
    want: 'mx.provider.test',
  },
  {
    name: 'the chain from the AAAA answer when the A lookup failed',
    answers: [
      answer({ rcode: 'SERVFAIL', authenticated: false }),
      answer({ answers: [cname('mx.example.test', 'mx.provider.test')] }),
    ],
    want: 'mx.provider.test',
  },
  {
    name: 'a chain the resolver did not validate is not followed',
    answers: [answer({ authenticated: false, answers: [cname('mx.example.test', 'mx.provider.test')] })],
    want: undefined,
  },
  {
    name: 'a CNAME of another name does not expand this one',
    answers: [answer({ answers: [cname('other.example.test', 'mx.provider.test')] })],
    want: undefined,
  },
];

for (const c of EXPAND_CASES)
  test(`expandedName: ${c.name}`, () => {
    assert.equal(expandedName('mx.example.test', c.answers), c.want);
  });

test('expandedName: a CNAME loop ends', () => {
  const loop = answer({
    answers: [cname('mx.example.test', 'b.example.test'), cname('b.example.test', 'mx.example.test')],
  });
  assert.ok(
    ['mx.example.test', 'b.example.test', undefined].includes(expandedName('mx.example.test', [loop])),
  );
});

const EE = (fill: number): TlsaRecord => ({
  usage: 3,
  selector: 1,
  matchingType: 1,
  data: Buffer.alloc(32, fill),
});
const PKIX_EE: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: Buffer.alloc(32, 9) };
const tlsa = (records: TlsaRecord[], over: Partial<SecureAnswer> = {}) =>
  answer({
    answers: records.map((r) => ({
      type: 'TLSA' as const,
      name: '_25._tcp.x',
      data: { usage: r.usage, selector: r.selector, matchingType: r.matchingType, certificate: r.data },
    })),
    ...over,
  });
const NXDOMAIN = answer({ rcode: 'NXDOMAIN' });
const SERVFAIL = answer({ rcode: 'SERVFAIL', authenticated: false });
const address = (authenticated = true) => ({
  a: answer({
    authenticated,
    answers: [cname('mx.example.test', 'mx.provider.test'), a('mx.provider.test', '192.0.2.1')],
  }),
  aaaa: answer({ authenticated }),
});

const AT_CASES: {
  name: string;
  address?: ReturnType<typeof address>;
  expanded: SecureAnswer;
  initial: SecureAnswer;
  kind: string;
  base?: string;
  fill?: number;
}[] = [
  {
    name: 'records at the expanded name win over those at the MX host name',
    expanded: tlsa([EE(1)]),
    initial: tlsa([EE(2)]),
    kind: 'dane',
    base: 'mx.provider.test',
    fill: 1,
  },
  {
    name: 'no records at the expanded name (validated denial): those at the MX host name',
    expanded: NXDOMAIN,
    initial: tlsa([EE(2)]),
    kind: 'dane',
    base: 'mx.example.test',
    fill: 2,
  },
  {
    name: 'unvalidated records at the expanded name are not used: those at the MX host name are',
    expanded: tlsa([EE(1)], { authenticated: false }),
    initial: tlsa([EE(2)]),
    kind: 'dane',
    base: 'mx.example.test',
    fill: 2,
  },
  {
    name: 'a failed lookup at the expanded name is not skipped: the host is unusable',
    expanded: SERVFAIL,
    initial: tlsa([EE(2)]),
    kind: 'failure',
  },
  {
    name: 'only unusable records at the expanded name: TLS required, the MX host name not asked',
    expanded: tlsa([PKIX_EE]),
    initial: tlsa([EE(2)]),
    kind: 'encrypt',
  },
  {
    name: 'records at neither name: no DANE',
    expanded: NXDOMAIN,
    initial: answer(),
    kind: 'none',
  },
  {
    name: 'a chain with an insecure link (addresses not validated): no DANE at either name',
    address: address(false),
    expanded: tlsa([EE(1)]),
    initial: tlsa([EE(2)]),
    kind: 'none',
  },
];

for (const c of AT_CASES)
  test(`daneHostAt: ${c.name}`, () => {
    const host = daneHostAt(c.address ?? address(), [
      { base: 'mx.provider.test', answer: c.expanded },
      { base: 'mx.example.test', answer: c.initial },
    ]);
    assert.equal(host.kind, c.kind);
    if (host.kind === 'dane') {
      assert.equal(host.base, c.base);
      assert.deepEqual(host.records[0]?.data, Buffer.alloc(32, c.fill));
      assert.deepEqual(host.addresses, ['192.0.2.1']);
    }
  });
