// Suppression changes a worker missed while it was not running (killed and being restarted, or
// retired by a reload and forked again): the primary keeps them per worker and sends them when the
// worker reports it started, so no worker goes on accepting mail for an address its siblings
// suppressed. Only the last change per address is kept: an add replaces the entry and a remove
// deletes it, so the last one decides, and the set never grows past the addresses changed.
import { normalizeAddress, type SuppressionChange } from '../suppression/entry.ts';

export type MissedChanges = Map<string, SuppressionChange>;

function keyOf(c: SuppressionChange): string {
  return c.op === 'add'
    ? `${c.entry.scope}\0${normalizeAddress(c.entry.address)}`
    : `${c.scope}\0${normalizeAddress(c.address)}`;
}

/** Records `changes` after those already missed (a later change to an address replaces its earlier one). */
export function remember(missed: MissedChanges, changes: readonly SuppressionChange[]): void {
  for (const c of changes) {
    const key = keyOf(c);
    // Deleted first so the map's order is the order of the last changes.
    missed.delete(key);
    missed.set(key, c);
  }
}
