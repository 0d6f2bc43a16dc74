// Fuzzing the inbound report path: corpus samples mutated (bytes flipped, cut, spliced, MIME
// boundaries and field names garbled) must each give a verdict, never an exception: a report
// that throws would be answered 451 and sent again forever. MAILFLEET_FUZZ_CASES sets the count
// (default 3000: the short mode of the unit suite).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readReport } from './report.ts';
import { parseDeliveryStatus, parseBounceText } from './dsn.ts';
import { parseFeedbackReport } from './arf.ts';
import { feedbackOf } from './outcome.ts';

const CORPUS = join(import.meta.dirname, '../../../test/fixtures/feedback');
const CASES = Number(process.env.MAILFLEET_FUZZ_CASES ?? 3000);
const KINDS = new Set(['hard-bounce', 'soft-bounce', 'delayed', 'complaint', 'not-spam', 'unrecognised']);

const samples = ['', 'sisimai', 'handmade'].flatMap((dir) =>
  readdirSync(join(CORPUS, dir))
    .filter((f) => f.endsWith('.eml'))
    .map((f) => readFileSync(join(CORPUS, dir, f))),
);

/** Mulberry32: a seeded generator, so a failing case can be replayed from its index. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = [
  '\r\n',
  '\r\n\r\n',
  '--',
  'Content-Type: message/delivery-status\r\n',
  'Status: ',
  'Action: ',
  ': ',
  ';',
  '=?utf-8?b?',
  '\0',
  '\xff',
];

function mutate(input: Buffer, next: () => number): Buffer {
  let out = Buffer.from(input);
  const steps = 1 + Math.floor(next() * 6);
  for (let i = 0; i < steps; i++) {
    const at = Math.floor(next() * (out.length + 1));
    switch (Math.floor(next() * 5)) {
      case 0: // flip bytes
        for (let j = 0; j < 8 && at + j < out.length; j++) out[at + j] = Math.floor(next() * 256);
        break;
      case 1: // cut
        out = out.subarray(0, at);
        break;
      case 2: // insert a structural token
        out = Buffer.concat([
          out.subarray(0, at),
          Buffer.from(TOKENS[Math.floor(next() * TOKENS.length)]!, 'latin1'),
          out.subarray(at),
        ]);
        break;
      case 3: {
        // splice in part of another sample
        const other = samples[Math.floor(next() * samples.length)]!;
        const from = Math.floor(next() * other.length);
        out = Buffer.concat([out.subarray(0, at), other.subarray(from, from + 400), out.subarray(at)]);
        break;
      }
      default: // delete a run
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + Math.floor(next() * 200))]);
    }
  }
  return out;
}

test(`${CASES} mutated reports each give a verdict, never an exception`, async () => {
  const token = { sendingDomain: 'example.com', queueId: 'Q1', recipient: 'a@x.test' };
  const seen = new Map<string, number>();
  for (let i = 0; i < CASES; i++) {
    const next = random(i);
    const input = mutate(samples[i % samples.length]!, next);
    let kind: string;
    try {
      kind = feedbackOf(token, await readReport(input)).kind;
      const text = input.toString('latin1');
      parseDeliveryStatus(text);
      parseBounceText(text);
      parseFeedbackReport(text);
    } catch (err) {
      assert.fail(`case ${i} threw: ${String(err)}`);
    }
    assert.ok(KINDS.has(kind), `case ${i}: ${kind}`);
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
  }
  // The mutations keep many reports readable: a fuzzer that only made garbage would prove little.
  assert.ok((seen.get('hard-bounce') ?? 0) > CASES / 10, JSON.stringify([...seen]));
  assert.ok((seen.get('complaint') ?? 0) > 0, JSON.stringify([...seen]));
});
