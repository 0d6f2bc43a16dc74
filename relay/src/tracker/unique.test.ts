import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UniqueOpens, uniqueVerdict } from './unique.ts';

type Open = [reader: string, domain: string, messageId: string];
const cases: { name: string; max?: number; opens: Open[]; first: boolean[] }[] = [
  {
    name: 'the first open of a message counts, its later opens do not',
    opens: [
      ['human', 'a.com', 'm1'],
      ['human', 'a.com', 'm1'],
      ['human', 'a.com', 'm1'],
    ],
    first: [true, false, false],
  },
  {
    name: 'messages and domains apart',
    opens: [
      ['human', 'a.com', 'm1'],
      ['human', 'a.com', 'm2'],
      ['human', 'b.com', 'm1'],
    ],
    first: [true, true, true],
  },
  {
    name: "an image proxy's prefetch does not use up the reader's unique open",
    opens: [
      ['machine', 'a.com', 'm1'],
      ['human', 'a.com', 'm1'],
      ['machine', 'a.com', 'm1'],
    ],
    first: [true, true, false],
  },
  {
    name: 'over the bound the least recently opened message is forgotten and counts again',
    max: 2,
    opens: [
      ['human', 'a.com', 'm1'],
      ['human', 'a.com', 'm2'],
      ['human', 'a.com', 'm1'], // m1 is now the most recent
      ['human', 'a.com', 'm3'], // forgets m2
      ['human', 'a.com', 'm1'],
      ['human', 'a.com', 'm2'],
    ],
    first: [true, true, false, true, false, true],
  },
];
for (const c of cases)
  test(`unique opens: ${c.name}`, () => {
    const unique = new UniqueOpens(c.max);
    assert.deepEqual(
      c.opens.map(([reader, domain, id]) => unique.first(reader, domain, id)),
      c.first,
    );
  });

// With the pool's shared store: its answer decides; no answer, this pod's memory, counted as fallback.
const verdicts: [string, Parameters<typeof uniqueVerdict>[0], boolean, ReturnType<typeof uniqueVerdict>][] = [
  ['the store set the key: first, whatever this pod saw', 'first', false, { first: true, fallback: false }],
  [
    'the key was there (another pod): not first, though new here',
    'seen',
    true,
    { first: false, fallback: false },
  ],
  ['the store down, new here: first, on this pod alone', 'down', true, { first: true, fallback: true }],
  [
    'the store down, seen here: not first, on this pod alone',
    'down',
    false,
    { first: false, fallback: true },
  ],
  [
    'no store configured: this pod decides, not a fallback',
    undefined,
    true,
    { first: true, fallback: false },
  ],
];
for (const [name, store, local, expected] of verdicts)
  test(`unique verdict: ${name}`, () => assert.deepEqual(uniqueVerdict(store, local), expected));
