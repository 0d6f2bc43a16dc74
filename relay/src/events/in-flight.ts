// What becomes of the unsent events of a segment the outbox drops for space (outbox.ts bound()):
// the ones of the batch being POSTed are still on their way, so they are held until the receiver
// answers (accepted: sent; anything else: dropped, for nothing is left to send again). Pure.

/** A position in the outbox: the byte offset in segment `seq`. */
export interface Position {
  seq: number;
  offset: number;
}

/** A segment about to be deleted: its number and the end offsets of its events. */
export interface DroppedSegment {
  seq: number;
  ends: readonly number[];
}

/**
 * The dropped segment's events: `dropped` neither acknowledged nor in flight (lost now), `held`
 * in the batch in flight (everything before `inFlightEnd`), decided when the POST ends.
 */
export function droppedSegmentFate(
  segment: DroppedSegment,
  ack: Position,
  inFlightEnd: Position | undefined,
): { dropped: number; held: number } {
  const after = (p: Position) => (segment.seq < p.seq ? Infinity : segment.seq === p.seq ? p.offset : 0);
  const acked = after(ack);
  const sending = inFlightEnd ? after(inFlightEnd) : 0;
  let dropped = 0;
  let held = 0;
  for (const end of segment.ends) {
    if (end <= acked) continue;
    if (end <= sending) held++;
    else dropped++;
  }
  return { dropped, held };
}
