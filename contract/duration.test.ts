import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from './duration.ts';

const cases: [string, number | undefined][] = [
  ['1s', 1000],
  ['250ms', 250],
  ['5m', 300_000],
  ['1h30m', 5_400_000],
  ['5d', 432_000_000],
  ['1.5s', 1500],
  ['', undefined],
  ['5', undefined],
  ['5 m', undefined],
  ['m5', undefined],
  ['5w', undefined],
];

for (const [text, expected] of cases) {
  test(`duration ${JSON.stringify(text)} is ${expected}`, () => {
    assert.equal(parseDuration(text), expected);
  });
}
