// The AUTH failure throttle: anvil's pure verdicts (anvil.ts) over counters kept per client IP and
// per username. The only state is the counter map; the clock is injected so tests can drive it.
import {
  afterFailure,
  combine,
  prune,
  verdict,
  type AnvilPolicy,
  type AnvilVerdict,
  type FailureCounter,
} from './anvil.ts';

export class AuthThrottle {
  policy: AnvilPolicy;
  /** "ip:<address>" / "user:<name>" -> recent failures of that key. */
  private readonly counters = new Map<string, FailureCounter>();
  private readonly now: () => number;

  constructor(policy: AnvilPolicy, now: () => number = Date.now) {
    this.policy = policy;
    this.now = now;
  }

  private keys(address: string, username: string): string[] {
    // Usernames are compared case-insensitively so "Alice" and "alice" share one counter.
    return [`ip:${address}`, `user:${username.toLowerCase()}`];
  }

  /** Whether to refuse the attempt (locked) or how long to wait before answering it. */
  check(address: string, username: string): AnvilVerdict {
    const now = this.now();
    return combine(this.keys(address, username).map((k) => verdict(this.counters.get(k), now, this.policy)));
  }

  /** Records a failure; returns how many keys (client IP, username) it locked out. */
  fail(address: string, username: string): number {
    const now = this.now();
    prune(this.counters, now, this.policy);
    let locked = 0;
    for (const key of this.keys(address, username)) {
      const before = this.counters.get(key);
      const after = afterFailure(before, now, this.policy);
      if (after.lockedUntil > now && before?.lockedUntil !== after.lockedUntil) locked++;
      this.counters.set(key, after);
    }
    return locked;
  }
}
