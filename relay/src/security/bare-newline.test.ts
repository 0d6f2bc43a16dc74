import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { finishScan, initialScan, scanChunk } from './bare-newline.ts';

function scan(...chunks: string[]): string | null {
  let state = initialScan;
  for (const chunk of chunks) state = scanChunk(state, Buffer.from(chunk, 'binary'));
  return finishScan(state);
}

describe('bare newline scanner', () => {
  // The smtpsmug vectors, as they appear inside message data (the client then sends the real end).
  const vectors: Array<[string, string, string]> = [
    ['\\n.\\n', 'a\r\nb\n.\nMAIL FROM:<x@evil.example>\r\n', 'bare-lf'],
    ['\\r.\\r', 'a\r\nb\r.\rMAIL FROM:<x@evil.example>\r\n', 'bare-cr'],
    ['\\r.\\n', 'a\r\nb\r.\nMAIL\r\n', 'bare-cr'],
    ['\\n.\\r', 'a\r\nb\n.\rMAIL\r\n', 'bare-lf'],
    ['\\n.\\r\\n', 'a\r\nb\n.\r\nMAIL\r\n', 'bare-lf'],
    ['\\r\\n.\\n', 'a\r\nb\r\n.\nMAIL\r\n', 'bare-lf'],
    ['\\r.\\r\\n', 'a\r\nb\r.\r\nMAIL\r\n', 'bare-cr'],
    ['\\r\\n.\\r', 'a\r\nb\r\n.\rMAIL\r\n', 'bare-cr'],
    ['\\r\\n\\0.\\r\\n', 'a\r\nb\r\n\0.\r\nMAIL\r\n', 'nul'],
    ['\\r\\n.\\0\\r\\n', 'a\r\nb\r\n.\0\r\nMAIL\r\n', 'nul'],
  ];
  for (const [name, data, found] of vectors) {
    test(`finds ${found} in the ${name} vector`, () => assert.equal(scan(data), found));
  }
  test('accepts CRLF-only data', () => assert.equal(scan('Subject: hi\r\n\r\nbody\r\n'), null));
  test('accepts a CRLF split across two chunks', () =>
    assert.equal(scan('line one\r', '\nline two\r\n'), null));
  test('finds a CR at the end of one chunk followed by text in the next', () =>
    assert.equal(scan('line\r', 'x\r\n'), 'bare-cr'));
  test('finds a CR at the very end of the data', () => assert.equal(scan('line\r\n', 'tail\r'), 'bare-cr'));
  test('finds an LF at the start of a chunk after a chunk ending in text', () =>
    assert.equal(scan('line', '\nx'), 'bare-lf'));
  test('keeps the first finding once found', () => assert.equal(scan('a\0', 'b\n'), 'nul'));
});
