import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyVerp, verpAddress, type VerpFields } from './verp.ts';

const key = Buffer.from('0123456789abcdef-pool-key');
const otherKey = Buffer.from('another-pool-key-0123456789');
const fields = (over: Partial<VerpFields> = {}): VerpFields => ({
  sendingDomain: 'example.com',
  queueId: 'MIQX3K2A00010A1B2C3D',
  recipient: 'Jane.Doe+news@Example.ORG',
  ...over,
});
const byReturnPath = (rp: string) =>
  ({ 'bounces.example.com': ['example.com'], 'rp.shared.test': ['a.test', 'b.test'] })[rp] ?? [];

test('the address is on the return-path domain and spells out the recipient', () => {
  const address = verpAddress(key, 'bounces.example.com', fields())!;
  assert.match(
    address,
    /^bnc-[a-z2-7]{13}-miqx3k2a00010a1b2c3d-jane\.doe\+news=example\.org@bounces\.example\.com$/,
  );
});

const verifyCases: [string, (a: string) => string, Buffer, ReturnType<typeof verifyVerp>][] = [
  [
    'an untouched address verifies to its message, recipient and sending domain',
    (a) => a,
    key,
    { ok: true, fields: { ...fields(), recipient: 'jane.doe+news@example.org' } },
  ],
  [
    'an address upper-cased by the bouncing MTA still verifies',
    (a) => a.toUpperCase(),
    key,
    { ok: true, fields: { ...fields(), recipient: 'jane.doe+news@example.org' } },
  ],
  [
    'a changed recipient is refused',
    (a) => a.replace('jane.doe', 'john.doe'),
    key,
    { ok: false, reason: 'bad-signature' },
  ],
  [
    'a changed queue id is refused',
    (a) => a.replace('miqx3k2a', 'miqx3k2b'),
    key,
    { ok: false, reason: 'bad-signature' },
  ],
  ['another pool key does not verify it', (a) => a, otherKey, { ok: false, reason: 'bad-signature' }],
  [
    'a plain mailbox is not a VERP address',
    () => 'postmaster@bounces.example.com',
    key,
    { ok: false, reason: 'not-verp' },
  ],
  [
    'a token on a domain that is no return path is refused',
    (a) => a.replace('@bounces.example.com', '@elsewhere.test'),
    key,
    { ok: false, reason: 'unknown-domain' },
  ],
];
for (const [name, change, verifyKey, expected] of verifyCases) {
  test(name, () => {
    const address = change(verpAddress(key, 'bounces.example.com', fields())!);
    assert.deepEqual(verifyVerp(verifyKey, address, byReturnPath), expected);
  });
}

test('a return path shared by two sending domains names the one the message was sent for', () => {
  const address = verpAddress(key, 'rp.shared.test', fields({ sendingDomain: 'b.test' }))!;
  const verdict = verifyVerp(key, address, byReturnPath);
  assert.equal(verdict.ok && verdict.fields.sendingDomain, 'b.test');
});

test('a recipient whose local part needs quoting gets no VERP address', () => {
  assert.equal(
    verpAddress(key, 'bounces.example.com', fields({ recipient: '"john smith"@example.org' })),
    undefined,
  );
});

test('a recipient with "=" and "-" in its local part round-trips', () => {
  const address = verpAddress(key, 'bounces.example.com', fields({ recipient: 'a=b-c@x.test' }))!;
  const verdict = verifyVerp(key, address, byReturnPath);
  assert.deepEqual(verdict.ok && verdict.fields.recipient, 'a=b-c@x.test');
});
