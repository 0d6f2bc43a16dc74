import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import {
  HASH_PARAMS,
  hashPassword,
  hashPasswordSync,
  parseHash,
  parseUsersFile,
  verifyPassword,
} from './users.ts';

test('a hashed password verifies, a wrong one does not', async () => {
  const hash = await hashPassword('s3cret');
  const parsed = parseUsersFile(`# users\nalice:${hash}\n`);
  assert.ok(parsed.ok);
  assert.equal(await verifyPassword(parsed.users, 'alice', 's3cret'), true);
  assert.equal(await verifyPassword(parsed.users, 'alice', 'wrong'), false);
  assert.equal(await verifyPassword(parsed.users, 'bob', 's3cret'), false);
});

test('the YAML form is accepted', async () => {
  const hash = await hashPassword('pw');
  const parsed = parseUsersFile(`users:\n  bob: "${hash}"\n`);
  assert.ok(parsed.ok);
  assert.equal(await verifyPassword(parsed.users, 'bob', 'pw'), true);
});

test('a line that is not user:hash names its line number', () => {
  assert.deepEqual(parseUsersFile('alice:plaintext\n'), {
    ok: false,
    error: 'line 1: expected username:$scrypt$...',
  });
});

test('scrypt cost parameters outside the bounds are refused', () => {
  const salt = Buffer.alloc(16, 1).toString('base64');
  const key = Buffer.alloc(32, 2).toString('base64');
  const hash = (params: string) => `$scrypt$${params}$${salt}$${key}`;
  const cases: [string, string, boolean][] = [
    ['the default cost', 'N=16384,r=8,p=1', true],
    ['the largest N allowed', 'N=1048576,r=8,p=1', true],
    ['N above 2^20', 'N=2097152,r=8,p=1', false],
    ['N below 1024', 'N=512,r=8,p=1', false],
    ['N not a power of two', 'N=16385,r=8,p=1', false],
    ['r of 0', 'N=16384,r=0,p=1', false],
    ['r above 32', 'N=16384,r=33,p=1', false],
    ['p above 16', 'N=16384,r=8,p=17', false],
    ['p of 0', 'N=16384,r=8,p=0', false],
  ];
  for (const [name, params, ok] of cases) {
    assert.equal(parseHash(hash(params)) !== undefined, ok, name);
    assert.equal(parseUsersFile(`alice:${hash(params)}\n`).ok, ok, name);
  }
});

test('every hash the programs write or once wrote verifies, and new hashes carry 32-byte keys', async () => {
  // The operator wrote 64-byte keys until the format moved here; pools keep their users files.
  const salt = Buffer.alloc(16, 7);
  const formerOperatorHash = `$scrypt$N=16384,r=8,p=1$${salt.toString('base64')}$${scryptSync('pw', salt, 64, { N: 16384, r: 8, p: 1 }).toString('base64')}`;
  const cases: { name: string; hash: string; keyBytes: number }[] = [
    {
      name: 'hashPassword (relay --hash-password, operator reconcile)',
      hash: await hashPassword('pw'),
      keyBytes: 32,
    },
    { name: 'hashPasswordSync (operator fallback)', hash: hashPasswordSync('pw'), keyBytes: 32 },
    { name: "the operator's former 64-byte key", hash: formerOperatorHash, keyBytes: 64 },
  ];
  for (const c of cases) {
    const parsed = parseUsersFile(`alice:${c.hash}\n`);
    assert.ok(parsed.ok, c.name);
    assert.equal(parseHash(c.hash)?.key.length, c.keyBytes, c.name);
    assert.equal(await verifyPassword(parsed.users, 'alice', 'pw'), true, c.name);
    assert.equal(await verifyPassword(parsed.users, 'alice', 'pW'), false, c.name);
  }
  assert.equal(HASH_PARAMS.keyBytes, 32);
});
