import { test } from 'node:test';
import assert from 'node:assert/strict';
import { droppedSegmentFate, type Position } from './in-flight.ts';

// Segment 3 holds four events ending at offsets 100, 200, 300, 400.
const SEGMENT = { seq: 3, ends: [100, 200, 300, 400] };
const cases: { name: string; ack: Position; inFlight?: Position; dropped: number; held: number }[] = [
  {
    name: 'nothing in flight: every unsent event is dropped',
    ack: { seq: 3, offset: 0 },
    dropped: 4,
    held: 0,
  },
  {
    name: 'acknowledged events are neither dropped nor held',
    ack: { seq: 3, offset: 200 },
    dropped: 2,
    held: 0,
  },
  {
    name: 'the batch in flight ends inside the segment: its events are held, the rest dropped',
    ack: { seq: 3, offset: 100 },
    inFlight: { seq: 3, offset: 300 },
    dropped: 1,
    held: 2,
  },
  {
    name: 'the batch in flight ends in a later segment: every unsent event of this one is held',
    ack: { seq: 3, offset: 0 },
    inFlight: { seq: 5, offset: 10 },
    dropped: 0,
    held: 4,
  },
  {
    name: 'the batch in flight is wholly in an earlier segment: nothing held',
    ack: { seq: 2, offset: 0 },
    inFlight: { seq: 2, offset: 500 },
    dropped: 4,
    held: 0,
  },
  {
    name: 'a segment wholly acknowledged: nothing dropped, nothing held',
    ack: { seq: 4, offset: 0 },
    inFlight: { seq: 4, offset: 50 },
    dropped: 0,
    held: 0,
  },
];
for (const c of cases)
  test(`a dropped segment: ${c.name}`, () => {
    assert.deepEqual(droppedSegmentFate(SEGMENT, c.ack, c.inFlight), { dropped: c.dropped, held: c.held });
  });
