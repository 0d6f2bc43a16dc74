import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashPassword, parseHash, parseUsersFile, verifyPassword } from './password.ts';

describe('password hashes', () => {
  test('a hash verifies its password and refuses another', async () => {
    const hash = await hashPassword('correct horse battery staple');
    assert.match(hash, /^\$scrypt\$N=16384,r=8,p=1\$/);
    assert.equal(await verifyPassword('correct horse battery staple', hash), true);
    assert.equal(await verifyPassword('Correct horse battery staple', hash), false);
  });
  test('two hashes of one password differ (random salt)', async () => {
    assert.notEqual(await hashPassword('pw'), await hashPassword('pw'));
  });
  test('a malformed hash never verifies', async () => {
    assert.equal(await verifyPassword('pw', 'plain-text-password'), false);
    assert.equal(await verifyPassword('pw', '$scrypt$N=16384,r=8,p=1$c2FsdA==$c2hvcnQ='), false);
  });
  const hostile: Array<[string, string]> = [
    ['N not a power of two', '$scrypt$N=10000,r=8,p=1$c2FsdA==$a2V5'],
    ['N too large', '$scrypt$N=4194304,r=8,p=1$c2FsdA==$a2V5'],
    ['r too large', '$scrypt$N=16384,r=64,p=1$c2FsdA==$a2V5'],
    ['p zero', '$scrypt$N=16384,r=8,p=0$c2FsdA==$a2V5'],
  ];
  for (const [name, hash] of hostile) {
    test(`refuses cost parameters with ${name}`, () => assert.equal(parseHash(hash), undefined));
  }
});

describe('users file', () => {
  test('username:hash lines with comments', async () => {
    const hash = await hashPassword('pw');
    const result = parseUsersFile(`# app users\nshop:${hash}\n\nbilling:${hash}\n`);
    assert.equal(result.ok, true);
    assert.deepEqual(result.ok && [...result.users.keys()], ['shop', 'billing']);
  });
  test('a YAML users map', async () => {
    const hash = await hashPassword('pw');
    const result = parseUsersFile(`users:\n  shop: "${hash}"\n`);
    assert.equal(result.ok && result.users.get('shop'), hash);
  });
  test('a line without a hash names the line', () => {
    assert.deepEqual(parseUsersFile('shop:secret\n'), {
      ok: false,
      error: 'line 1: expected username:$scrypt$... hash',
    });
  });
});
