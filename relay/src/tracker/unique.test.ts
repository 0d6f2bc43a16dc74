import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UniqueOpens } from './unique.ts';

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
