import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BounceWindow } from './bounce-window.ts';

test('the rate is bounced over delivered plus bounced', () => {
  const w = new BounceWindow(60_000, 6);
  for (let i = 0; i < 3; i++) w.record('a.com', 'delivered', 1000);
  w.record('a.com', 'bounced', 2000);
  assert.equal(w.rate('a.com', 3000), 0.25);
  assert.equal(w.rate('b.com', 3000), 0);
});

test('outcomes older than the window no longer count', () => {
  const w = new BounceWindow(60_000, 6);
  w.record('a.com', 'bounced', 0);
  w.record('a.com', 'delivered', 50_000);
  assert.equal(w.rate('a.com', 55_000), 0.5);
  assert.equal(w.rate('a.com', 65_000), 0);
});
