// One one-shot timer for the scheduler's next instant (a retry or the end of a limit wait), so
// nothing polls: it is re-armed whenever the earliest instant changes.

/** Arms fn after delayMs; returns a cancel function. Injected as a fake in tests. */
export type SetTimer = (fn: () => void, delayMs: number) => () => void;

export const realTimer: SetTimer = (fn, delayMs) => {
  const handle = setTimeout(fn, delayMs);
  handle.unref();
  return () => clearTimeout(handle);
};

export class WakeTimer {
  private readonly set: SetTimer;
  private readonly fire: () => void;
  /** Epoch ms the armed timer is for; undefined when none is armed. */
  private armedAt: number | undefined;
  private cancel: (() => void) | undefined;

  constructor(set: SetTimer, fire: () => void) {
    this.set = set;
    this.fire = fire;
  }

  /** Arms for `at` (or disarms when undefined); a timer already armed for `at` is kept. */
  arm(at: number | undefined, now: number): void {
    if (at === this.armedAt) return;
    this.cancel?.();
    this.cancel = undefined;
    this.armedAt = at;
    if (at === undefined) return;
    this.cancel = this.set(
      () => {
        this.armedAt = undefined;
        this.cancel = undefined;
        this.fire();
      },
      Math.max(0, at - now),
    );
  }

  stop(): void {
    this.arm(undefined, 0);
  }
}
