// How long a relay waits for the shared store's answer before it decides without it.

/**
 * `reply`'s value, or `late` when it has not come within `ms`. An answer already arrived when the
 * time is up still counts: after this process stalled (starved of CPU, a long GC pause) Node runs
 * expired timers before it reads waiting sockets, and the store's prompt answer would be taken
 * for the store's slowness, sending the relay past the pool's limits on its own share.
 * `reply` must not reject (map a failure to a value first).
 */
export function answerWithin<T>(reply: Promise<T>, ms: number): Promise<T | 'late'> {
  return new Promise((resolve) => {
    // setImmediate runs after the poll phase, which reads whatever the sockets hold.
    const timer = setTimeout(() => setImmediate(() => resolve('late')), ms);
    void reply.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
