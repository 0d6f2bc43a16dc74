// Rollout slots shared by every pool's reconcile: at most `max` pools replace their relays at once.
// A pool takes a slot when its template changes and gives it back once its workload has rolled out
// (or after holdMs, so a rollout that never finishes, say unschedulable pods, cannot block every
// other pool forever). reserve() is synchronous, so two reconciles never both take the last slot.

export class RolloutSlots {
  /** Pool key ("namespace/name") -> when it took its slot (ms). */
  readonly #held = new Map<string, number>();
  readonly #max: number;
  readonly #holdMs: number;

  /** max <= 0: no limit. */
  constructor(max: number, holdMs = 15 * 60_000) {
    this.#max = max;
    this.#holdMs = holdMs;
  }

  /** Takes (or keeps) a slot for the pool; false while all are held by others. */
  reserve(key: string, now: number): boolean {
    if (this.#max <= 0) return true;
    if (this.#held.has(key)) return true;
    for (const [other, since] of this.#held) if (now - since >= this.#holdMs) this.#held.delete(other);
    if (this.#held.size >= this.#max) return false;
    this.#held.set(key, now);
    return true;
  }

  release(key: string): void {
    this.#held.delete(key);
  }

  /** Pools holding a slot now. */
  get holders(): string[] {
    return [...this.#held.keys()];
  }
}
