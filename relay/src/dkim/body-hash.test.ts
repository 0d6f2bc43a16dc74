import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { RelaxedBodyHash } from './body-hash.ts';
import { relaxedBody } from './canonicalize.ts';

/** bh= as the definition gives it: the whole body as a string, canonicalized, hashed. */
const reference = (body: string) => createHash('sha256').update(relaxedBody(body), 'latin1').digest('base64');
/** The canonical text hashed directly. */
const hashOf = (canonical: string) => createHash('sha256').update(canonical, 'latin1').digest('base64');

function incremental(parts: string[]): string {
  const hash = new RelaxedBodyHash();
  for (const p of parts) hash.update(Buffer.from(p, 'latin1'));
  return hash.digest();
}

// [case, body in chunks, its canonical form (RFC 6376 §3.4.4)]
const cases: [string, string[], string][] = [
  ['an empty body is empty', [], ''],
  ['only empty lines are empty', ['\r\n\r\n', '\r\n'], ''],
  ['trailing empty lines go, one CRLF stays', ['a\r\n\r\n\r\n'], 'a\r\n'],
  ['trailing empty lines split across chunks go', ['a\r\n\r', '\n', '\r\n'], 'a\r\n'],
  ['empty lines followed by text stay', ['a\r\n\r\n', '\r\nb\r\n'], 'a\r\n\r\n\r\nb\r\n'],
  ['a last line without CRLF gets one', ['a\r\nb'], 'a\r\nb\r\n'],
  ['whitespace at a line end goes', ['a \t \r\nb\t\r\n'], 'a\r\nb\r\n'],
  ['whitespace at a line end split from its CRLF goes', ['a  ', '\r', '\nb'], 'a\r\nb\r\n'],
  ['whitespace at the very end goes', ['a\r\nb  \t'], 'a\r\nb\r\n'],
  ['a line of whitespace only becomes empty (and trailing)', ['a\r\n  \t\r\n'], 'a\r\n'],
  ['a whitespace-only line before text stays as an empty line', ['a\r\n \t\r\nb'], 'a\r\n\r\nb\r\n'],
  ['a run of spaces and tabs becomes one space', ['a \t  b\r\n'], 'a b\r\n'],
  ['a run split across chunks becomes one space', ['a ', '\t', '  b\r\n'], 'a b\r\n'],
  ['a tab alone becomes a space', ['a\tb\r\n'], 'a b\r\n'],
  ['whitespace at a line start becomes one space', ['  a\r\n'], ' a\r\n'],
  ['single spaces between words stay', ['one two three\r\n'], 'one two three\r\n'],
  ['a bare CR is kept, whitespace before it is one space', ['a  \rb\r\n'], 'a \rb\r\n'],
  ['a bare LF is kept, whitespace before it is one space', ['a \t\nb\r\n'], 'a \nb\r\n'],
  ['a final bare CR is kept before the added CRLF', ['a\r\n\r'], 'a\r\n\r\r\n'],
  ['a CR before a CRLF is a bare one', ['a\r', '\r\n'], 'a\r\r\n'],
  ['a line split in the middle of a word is whole', ['Hel', 'lo\r', '\nwor', 'ld\r\n'], 'Hello\r\nworld\r\n'],
];

describe('relaxed body hash, incremental (RFC 6376 §3.4.4, §3.7)', () => {
  for (const [name, parts, canonical] of cases)
    test(name, () => {
      assert.equal(relaxedBody(parts.join('')), canonical, 'the definition');
      assert.equal(incremental(parts), hashOf(canonical));
    });

  test('the empty body hash is the one RFC 6376 §3.4.4 gives (47DEQpj8...)', () => {
    assert.equal(incremental([]), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });

  test('a body larger than the scratch buffer that needs changing everywhere', () => {
    const body = 'word \t word  \r\n'.repeat(5000);
    assert.equal(incremental([body.slice(0, 33333), body.slice(33333)]), reference(body));
  });

  test('two hashes updated in turn do not mix (they share one scratch buffer)', () => {
    const a = ['x  y\t', '\r\n', 'z   \r', '\n\r\n'];
    const b = ['\t\tb c', '  ', 'd\r\n \r\n'];
    const ha = new RelaxedBodyHash();
    const hb = new RelaxedBodyHash();
    for (let i = 0; i < 4; i++) {
      if (a[i] !== undefined) ha.update(Buffer.from(a[i]!, 'latin1'));
      if (b[i] !== undefined) hb.update(Buffer.from(b[i]!, 'latin1'));
    }
    assert.equal(ha.digest(), reference(a.join('')));
    assert.equal(hb.digest(), reference(b.join('')));
  });

  test('the same hash as the whole-body definition for any body cut anywhere', () => {
    const body = fc
      .array(fc.constantFrom('\r\n', ' ', '\t', 'a', 'bc', '\r', '\n', ' \r\n', '\t\r\n', '\u00e9', '  '), {
        maxLength: 60,
      })
      .map((p) => p.join(''));
    fc.assert(
      fc.property(body, fc.array(fc.nat({ max: 120 }), { maxLength: 8 }), (b, cuts) => {
        const at = [...new Set(cuts.map((c) => Math.min(c, b.length)))].sort((x, y) => x - y);
        const parts: string[] = [];
        let from = 0;
        for (const c of at) {
          parts.push(b.slice(from, c));
          from = c;
        }
        parts.push(b.slice(from));
        assert.equal(incremental(parts), reference(b));
      }),
      { numRuns: 5000 },
    );
  });
});
