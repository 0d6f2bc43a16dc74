import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { DotStuffer, smtpData } from './smtp-data.ts';
import { rememberCleanLines } from '../security/bare-newline.ts';

/** What nodemailer's DataStream sends for a message written to it in one piece. */
function viaDataStream(message: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = new DataStream();
    const out: Buffer[] = [];
    stream.on('data', (c: Buffer) => out.push(c));
    stream.on('end', () => resolve(Buffer.concat(out)));
    stream.on('error', reject);
    stream.write(message);
    stream.end();
  });
}

const sent = (message: string) => Buffer.concat(smtpData(Buffer.from(message, 'latin1'))).toString('latin1');

const cases: [string, string, string][] = [
  ['a CRLF message is sent as it is, then CRLF.CRLF', 'a\r\nb\r\n', 'a\r\nb\r\n.\r\n'],
  ['a message without a final CRLF gets one before the dot', 'a\r\nb', 'a\r\nb\r\n.\r\n'],
  ['a dot starting a line is doubled', 'a\r\n.b\r\n..\r\n', 'a\r\n..b\r\n...\r\n.\r\n'],
  ['a dot starting the message is doubled', '.a\r\n', '..a\r\n.\r\n'],
  ['a dot inside a line is not', 'a.b\r\n', 'a.b\r\n.\r\n'],
  ['a bare LF becomes CRLF', 'a\nb\n', 'a\r\nb\r\n.\r\n'],
  ['a bare CR becomes CRLF, and a dot after it is doubled', 'a\r.b\rc', 'a\r\n..b\r\nc\r\n.\r\n'],
  ['a final bare CR is completed', 'a\r', 'a\r\n.\r\n'],
  ['a lone dot line cannot end the data early', 'a\r\n.\r\nb\r\n', 'a\r\n..\r\nb\r\n.\r\n'],
];
for (const [name, message, expected] of cases) test(name, () => assert.equal(sent(message), expected));

test('the stored Buffer itself goes out when nothing needs escaping', () => {
  const message = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  assert.equal(smtpData(message)[0], message);
});

test('a message with lines that start with a dot goes out as pieces of the stored Buffer, not a copy', () => {
  // Not from Buffer's shared pool, so no other Buffer shares its memory.
  const text = 'Subject: x\r\n\r\n.one\r\nmiddle\r\n.two\r\n';
  const message = Buffer.alloc(text.length, text, 'latin1');
  const parts = smtpData(message);
  const views = parts.filter((p) => p.buffer === message.buffer);
  assert.equal(
    views.reduce((n, p) => n + p.length, 0),
    message.length,
  );
  assert.equal(
    Buffer.concat(parts).toString('latin1'),
    'Subject: x\r\n\r\n..one\r\nmiddle\r\n..two\r\n.\r\n',
  );
});

test('a message known to have clean line ends is not scanned again, any other is', () => {
  // A bare LF the scan would turn into CRLF: left as it is only when the caller vouched for it.
  const vouched = Buffer.from('a\nb\r\n');
  rememberCleanLines(vouched);
  assert.equal(Buffer.concat(smtpData(vouched)).toString('latin1'), 'a\nb\r\n.\r\n');
  assert.equal(sent('a\nb\r\n'), 'a\r\nb\r\n.\r\n');
});

test('byte for byte what nodemailer DataStream sends, for any message', async () => {
  const bytes = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a));
  const lines = fc
    .array(fc.constantFrom('\r\n', '\r', '\n', '.', '..', 'x', 'ab', '\r\n.', '\r\n.\r\n', ' '), {
      minLength: 1,
      maxLength: 60,
    })
    .map((p) => Buffer.from(p.join(''), 'latin1'));
  // CRLF lines only: the native path (dots found with indexOf), not the byte-by-byte one.
  const crlfLines = fc
    .array(fc.constantFrom('\r\n', '.', '..', 'x', '\r\n.', '\r\n.\r\n', '\r\n..'), {
      minLength: 1,
      maxLength: 60,
    })
    .map((p) => Buffer.from(p.join(''), 'latin1'));
  await fc.assert(
    fc.asyncProperty(fc.oneof(bytes, lines, crlfLines), async (message) => {
      assert.deepEqual(Buffer.concat(smtpData(message)), await viaDataStream(message));
    }),
    { numRuns: 2000 },
  );
});

/** `message` cut at `cuts` (offsets, any order, repeats give empty parts). */
function cut(message: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.min(c, message.length)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    parts.push(message.subarray(from, c));
    from = c;
  }
  parts.push(message.subarray(from));
  return parts;
}

const sentInParts = (...parts: string[]) =>
  Buffer.concat(smtpData(parts.map((p) => Buffer.from(p, 'latin1')))).toString('latin1');

const partCases: [string, string[], string][] = [
  ['a CRLF split between parts, a dot after it', ['a\r', '\n.b\r\n'], 'a\r\n..b\r\n.\r\n'],
  ['a part ending in CRLF, the next starting with a dot', ['a\r\n', '.b\r\n'], 'a\r\n..b\r\n.\r\n'],
  [
    'a part ending in CRLF and a dot, the line going on in the next',
    ['a\r\n.', 'b\r\n'],
    'a\r\n..b\r\n.\r\n',
  ],
  ['a dot starting a part in the middle of a line is not doubled', ['a\r\nx', '.b\r\n'], 'a\r\nx.b\r\n.\r\n'],
  ['a final line without CRLF, split', ['a\r\nb', 'c'], 'a\r\nbc\r\n.\r\n'],
  ['a final CR and its LF in two parts: one line end', ['a\r', '\n'], 'a\r\n.\r\n'],
  ['a lone dot line split from its CRLF', ['a\r\n', '.', '\r\nb\r\n'], 'a\r\n..\r\nb\r\n.\r\n'],
  [
    'a signature field, then a message that starts with a dot',
    ['X-Sig: 1\r\n', '.a\r\n'],
    'X-Sig: 1\r\n..a\r\n.\r\n',
  ],
  ['empty parts change nothing', ['', 'a\r\n', '', '.b', ''], 'a\r\n..b\r\n.\r\n'],
];
for (const [name, parts, expected] of partCases)
  test(`in parts: ${name}`, () => assert.equal(sentInParts(...parts), expected));

test('parts go out as themselves when nothing needs escaping (no copy, no join)', () => {
  const field = Buffer.from('DKIM-Signature: v=1\r\n');
  const message = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  const data = smtpData([field, message]);
  assert.equal(data[0], field);
  assert.equal(data[1], message);
  assert.equal(data.length, 3);
});

test('in parts, byte for byte what nodemailer DataStream sends for the parts joined, wherever they are cut', async () => {
  const message = fc
    .array(fc.constantFrom('\r\n', '\r', '\n', '.', 'x', '\r\n.', '\r\n.\r\n', ' ', '\0'), {
      minLength: 1,
      maxLength: 40,
    })
    .map((p) => Buffer.from(p.join(''), 'latin1'));
  const crlfOnly = fc
    .array(fc.constantFrom('\r\n', '.', 'x', '\r\n.', '\r\n.\r\n', '\r\n..'), { minLength: 1, maxLength: 40 })
    .map((p) => Buffer.from(p.join(''), 'latin1'));
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(message, crlfOnly),
      fc.array(fc.nat({ max: 200 }), { maxLength: 6 }),
      async (whole, cuts) => {
        const parts = cut(whole, cuts);
        assert.deepEqual(Buffer.concat(smtpData(parts)), await viaDataStream(whole));
      },
    ),
    { numRuns: 3000 },
  );
});

/** DotStuffer fed `chunks` one call each (as a file is read), joined. */
function stuffedIncrementally(chunks: readonly Buffer[]): string {
  const stuffer = new DotStuffer();
  const out: Buffer[] = [];
  for (const chunk of chunks) stuffer.push(Buffer.from(chunk), out);
  stuffer.end(out);
  return Buffer.concat(out).toString('latin1');
}

// Each input cut at every position, and at every pair of positions (three chunks, one possibly
// empty): the chunk-by-chunk data equals the one-shot data, and the one-shot data is the expected
// wire form.
const splitCases: [string, string, string][] = [
  ['a dot line split from its CRLF', 'a\r\n.\r\nb\r\n', 'a\r\n..\r\nb\r\n.\r\n'],
  ['dots starting lines, the message and the end', '.a\r\n..b\r\n.', '..a\r\n...b\r\n..\r\n.\r\n'],
  ['CRLF then a dot, then CRLF.CRLF inside', 'x\r\n.\r\n.\r\ny', 'x\r\n..\r\n..\r\ny\r\n.\r\n'],
  ['bare CR before a dot, bare LF before a dot', 'a\r.b\n.c', 'a\r\n..b\r\n..c\r\n.\r\n'],
  ['CR CR LF and LF LF', 'a\r\r\nb\n\nc', 'a\r\n\r\nb\r\n\r\nc\r\n.\r\n'],
  ['a final bare CR', 'a\r\n.\r', 'a\r\n..\r\n.\r\n'],
  ['a final CRLF', 'a\r\n', 'a\r\n.\r\n'],
  ['NUL beside dots', '\0\r\n.\0', '\0\r\n..\0\r\n.\r\n'],
];
for (const [name, input, expected] of splitCases) {
  test(`chunk by chunk, cut anywhere: ${name}`, () => {
    const whole = Buffer.from(input, 'latin1');
    assert.equal(sent(input), expected);
    for (let i = 0; i <= whole.length; i++) {
      const two = [whole.subarray(0, i), whole.subarray(i)];
      assert.equal(stuffedIncrementally(two), expected, `cut at ${i}`);
      for (let j = i; j <= whole.length; j++) {
        const three = [whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)];
        assert.equal(stuffedIncrementally(three), expected, `cut at ${i} and ${j}`);
      }
    }
    // One byte per call: every boundary at once.
    assert.equal(stuffedIncrementally([...whole].map((b) => Buffer.from([b]))), expected, 'byte by byte');
  });
}
