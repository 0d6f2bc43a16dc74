import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envelopesFor, returnPaths } from './envelopes.ts';
import { verifyVerp } from './verp.ts';

const key = Buffer.from('0123456789abcdef-pool-key');
const paths = returnPaths(key, [
  { domain: 'example.com', suspended: false, returnPath: 'bounces.example.com' },
  { domain: 'plain.test', suspended: false },
]);

test('a sending domain with a return path gets one signed envelope per recipient', () => {
  const envelopes = envelopesFor('news@example.com', 'ABC1', ['a@x.test', 'b@x.test'], paths);
  assert.deepEqual(
    envelopes.map((e) => e.recipients),
    [['a@x.test'], ['b@x.test']],
  );
  for (const e of envelopes) {
    const verdict = verifyVerp(key, e.from, (rp) => paths.byReturnPath.get(rp) ?? []);
    assert.deepEqual(verdict, {
      ok: true,
      fields: { sendingDomain: 'example.com', queueId: 'ABC1', recipient: e.recipients[0] },
    });
  }
});

const unchanged: [string, string, string | undefined, typeof paths | undefined][] = [
  ['a sending domain without a return path keeps one transaction', 'news@plain.test', 'ABC1', paths],
  ['the null sender of a DSN is never rewritten', '', 'ABC1', paths],
  ['without a VERP key nothing is rewritten', 'news@example.com', 'ABC1', undefined],
  ['without a queue id nothing is rewritten', 'news@example.com', undefined, paths],
];
for (const [name, from, queueId, p] of unchanged) {
  test(name, () => {
    assert.deepEqual(envelopesFor(from, queueId, ['a@x.test', 'b@x.test'], p), [
      { from, recipients: ['a@x.test', 'b@x.test'] },
    ]);
  });
}

test('a recipient that cannot be VERP-encoded goes in one transaction with the original sender', () => {
  const envelopes = envelopesFor('news@example.com', 'ABC1', ['a@x.test', '"a b"@x.test'], paths);
  assert.equal(envelopes.length, 2);
  assert.deepEqual(envelopes[1], { from: 'news@example.com', recipients: ['"a b"@x.test'] });
});
