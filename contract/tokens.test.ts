import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { adminTokenProblem } from './tokens.ts';

describe('adminTokenProblem', () => {
  const cases: [string, string, string | undefined][] = [
    ['a generated token (43 base64url characters)', 'q9X2nYl8cVZb0m3PdfKe1wT7hRjU5sAoGi4L6yNzBCE', undefined],
    ['standard base64 with padding', 'aGVsbG8gd29ybGQgaGVsbG8=', undefined],
    ['an empty file', '', 'token shorter than 16 characters'],
    ['15 characters', 'abcdefghijklmno', 'token shorter than 16 characters'],
    ['a space inside', 'abcdefgh ijklmnopq', 'token has characters a Bearer header cannot carry'],
    ['two lines', 'abcdefghijklmnop\nqrstuvwxyz123456', 'token has characters a Bearer header cannot carry'],
  ];
  for (const [name, token, want] of cases)
    test(`${name}: ${want ?? 'usable'}`, () => assert.equal(adminTokenProblem(token), want));
});
