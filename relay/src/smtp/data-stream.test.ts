import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { feedDataStream, originalFeedDataStream } from './data-stream.ts';

/** What an SMTPStream in data mode emits as message data, and the commands it parses after it. */
async function parse(chunks: Buffer[], method: unknown): Promise<{ data: string; commands: string[] }> {
  const stream = new SMTPStream();
  (stream as unknown as { _feedDataStream: unknown })._feedDataStream = method;
  const commands: string[] = [];
  stream.oncommand = (command: Buffer, next?: () => void) => {
    commands.push(command.toString('latin1'));
    next?.();
  };
  const out: Buffer[] = [];
  const data = stream.startDataMode();
  data.on('data', (c: Buffer) => out.push(c));
  data.on('end', () => stream.continue());
  for (const chunk of chunks) await new Promise<void>((resolve) => stream.write(chunk, () => resolve()));
  await new Promise<void>((resolve) => stream.end(() => resolve()));
  return { data: Buffer.concat(out).toString('latin1'), commands };
}

const chunked = (data: Buffer, cuts: number[]) => {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  return [...points, data.length].map((end, k, ends) => data.subarray(k ? ends[k - 1] : 0, end));
};

test('the installed DATA parser is the native-scan one', () => {
  assert.equal(
    (SMTPStream.prototype as unknown as { _feedDataStream: unknown })._feedDataStream,
    feedDataStream,
  );
  assert.notEqual(originalFeedDataStream, feedDataStream);
});

test('same message data and same commands after it as smtp-server own parser, for any chunking', async () => {
  const text = fc
    .array(fc.constantFrom('\r\n', '.', '..', 'x', 'ab', '\r\n.\r\n', '\r\n..', '\n', '\r', '.\r\n'), {
      maxLength: 40,
    })
    .map((p) => Buffer.from(`${p.join('')}\r\n.\r\nQUIT\r\n`, 'latin1'));
  await fc.assert(
    fc.asyncProperty(text, fc.array(fc.nat(), { maxLength: 6 }), async (message, cuts) => {
      const chunks = chunked(message, cuts);
      assert.deepEqual(await parse(chunks, feedDataStream), await parse(chunks, originalFeedDataStream));
    }),
    { numRuns: 1500 },
  );
});

test('a 100 KB message in socket-sized chunks comes out whole, its escape dots removed', async () => {
  const line = 'x'.repeat(76);
  const body = Array.from({ length: 1300 }, (_, i) => (i % 100 === 50 ? `.${line}` : line)).join('\r\n');
  const wire = Buffer.from(`${body.replaceAll('\r\n.', '\r\n..')}\r\n.\r\nQUIT\r\n`, 'latin1');
  const chunks = chunked(
    wire,
    Array.from({ length: 10 }, (_, i) => (i + 1) * 16384 + i),
  );
  const got = await parse(chunks, feedDataStream);
  assert.equal(got.data, `${body}\r\n`);
  assert.deepEqual(got.commands, ['QUIT']);
});

test('same output as smtp-server own parser for every split of messages where data ends or dots escape across chunks', async () => {
  // Every split into two and three chunks: the 4 bytes kept between chunks meet every position of
  // a terminator, an escape dot, and a bare LF before ".." (which smtp-server also unstuffs).
  for (const text of [
    'abcdefg\r\n..x\r\n.\r\nQUIT\r\n',
    'abcdefg\n..x\r\n.\r\nQUIT\r\n',
    'abcdefg\r\n.\r\nQUIT\r\n',
    'abcdefgh\rx\r\n.\r\nQUIT\r\n',
    '..abcdef\r\n.\r\nQUIT\r\n',
  ]) {
    const message = Buffer.from(text, 'latin1');
    for (let i = 0; i <= message.length; i++)
      for (let j = i; j <= message.length; j++) {
        const chunks = chunked(message, [i, j]);
        assert.deepEqual(
          await parse(chunks, feedDataStream),
          await parse(chunks, originalFeedDataStream),
          `${JSON.stringify(text)} split at ${i}, ${j}`,
        );
      }
  }
});
