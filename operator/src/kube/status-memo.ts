// What this operator last wrote to each object's status, so a reconcile that runs before the
// watch has echoed that write compares with what was written, not with the stale cached copy
// (which would write the same status a second time).
/** The memo's key of one object. */
export const statusKey = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

export type Written = {
  /** resourceVersion of the cached object when the write was decided. */
  before: string;
  status: unknown;
};

export class StatusMemo {
  readonly #written = new Map<string, Written>();

  /**
   * The status to compare a new decision with: ours when the cache still shows the object as it
   * was before our last write, else the cached one (the echo arrived, or someone else wrote).
   */
  baseline(key: string, cached: { resourceVersion?: string; status: unknown }): unknown {
    const written = this.#written.get(key);
    if (written && cached.resourceVersion !== undefined && written.before === cached.resourceVersion)
      return written.status;
    if (written) this.#written.delete(key);
    return cached.status;
  }

  remember(key: string, before: string | undefined, status: unknown): void {
    if (before === undefined) return;
    this.#written.set(key, { before, status });
  }

  forget(key: string): void {
    this.#written.delete(key);
  }

  get size(): number {
    return this.#written.size;
  }
}
