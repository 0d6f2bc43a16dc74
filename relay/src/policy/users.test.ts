import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, parseUsersFile, verifyPassword } from './users.ts';

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
