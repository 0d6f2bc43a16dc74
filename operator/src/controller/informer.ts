// A list-watch cache for one kind (optionally one namespace and a label selector) that does not
// go silent: every watch end or error restarts it with backoff, 410 Gone relists, and a watchdog
// aborts a watch that has sent nothing (not even a bookmark) for too long.
import type { KubeClient } from '../kube/client.ts';
import { OperatorError } from '../errors.ts';
import type { Logger } from '../../../contract/log.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { collectionPath } from '../kube/resources.ts';
import type { KubeObject } from '../desired/types.ts';

const WATCH_RESTART_CAUSES = ['closed', 'gone', 'watchdog', 'error'] as const;
type WatchRestartCause = (typeof WATCH_RESTART_CAUSES)[number];
export type InformerOptions = {
  kind: string;
  namespace?: string;
  labelSelector?: string;
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  onChange: (object: KubeObject, old: KubeObject | undefined) => void;
  onDelete: (object: KubeObject) => void;
  /** Cache only metadata (PartialObjectMetadata): for kinds watched just to notice changes. */
  metadataOnly?: boolean;
  /** Server-side watch timeout; the watchdog fires after twice this without any event. */
  watchSeconds?: number;
  /** Index keys of an object (cache-index.ts): indexed() returns the objects filed under a key. */
  index?: (object: KubeObject) => string[];
};

const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

const key = (o: KubeObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class Informer {
  readonly #o: InformerOptions;
  /** namespace/name -> last seen object. */
  readonly cache = new Map<string, KubeObject>();
  /** Index key -> (namespace/name -> object). */
  readonly #index = new Map<string, Map<string, KubeObject>>();
  /** True once the first list has filled the cache. */
  synced = false;
  /** Resolves when the first list has filled the cache (never, if stopped before). */
  readonly whenSynced: Promise<void>;
  #resolveSynced: () => void = () => {};
  /** Wall time of the last list or watch event: what the watchdog and /healthz look at. */
  lastActivity = Date.now();
  #abort = new AbortController();
  #stopped = false;
  #resourceVersion = '';
  #failures = 0;

  constructor(o: InformerOptions) {
    this.#o = o;
    this.whenSynced = new Promise((resolve) => (this.#resolveSynced = resolve));
    // Series exist from the start (at 0), so dashboards and rate() see a healthy operator as 0
    // rather than "no data".
    for (const cause of WATCH_RESTART_CAUSES) o.metrics.watchRestarts.inc({ resource: o.kind, cause }, 0);
  }

  get kind(): string {
    return this.#o.kind;
  }

  list(): KubeObject[] {
    return [...this.cache.values()];
  }

  get(namespace: string, name: string): KubeObject | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  indexed(key: string): KubeObject[] {
    const found = this.#index.get(key);
    return found ? [...found.values()] : [];
  }

  /** Stores (or, without an object, forgets) one object, keeping the index in step. */
  #store(k: string, object: KubeObject | undefined, old: KubeObject | undefined): void {
    const index = this.#o.index;
    if (index && old)
      for (const key of index(old)) {
        const entries = this.#index.get(key);
        entries?.delete(k);
        if (entries?.size === 0) this.#index.delete(key);
      }
    if (!object) {
      this.cache.delete(k);
      return;
    }
    // Field-manager bookkeeping is never read here and is often the larger part of an object.
    if (object.metadata) delete object.metadata.managedFields;
    this.cache.set(k, object);
    if (index)
      for (const key of index(object)) {
        const entries = this.#index.get(key) ?? new Map<string, KubeObject>();
        entries.set(k, object);
        this.#index.set(key, entries);
      }
  }

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
  }

  async #relist(): Promise<void> {
    const path = collectionPath(this.#o.kind, this.#o.namespace);
    const list = await this.#o.client.request<{
      apiVersion?: string;
      metadata: { resourceVersion: string };
      items: KubeObject[];
    }>('GET', path, {
      verb: 'list',
      query: { labelSelector: this.#o.labelSelector },
      ...(this.#o.metadataOnly ? { accept: METADATA_LIST } : {}),
    });
    const seen = new Set<string>();
    // A metadata-only list of nothing comes back with "items": null.
    for (const item of list.items ?? []) {
      item.kind = this.#o.kind;
      // Items of a list of built-in objects carry no apiVersion (watch events do). Without it the
      // drift check sees every listed child as changed and re-applies it on each reconcile.
      if (!this.#o.metadataOnly && list.apiVersion) item.apiVersion ??= list.apiVersion;
      const k = key(item);
      seen.add(k);
      const old = this.cache.get(k);
      this.#store(k, item, old);
      if (old?.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.#o.onChange(item, old);
    }
    for (const [k, old] of this.cache) {
      if (!seen.has(k)) {
        this.#store(k, undefined, old);
        this.#o.onDelete(old);
      }
    }
    this.#resourceVersion = list.metadata.resourceVersion;
    this.synced = true;
    this.#resolveSynced();
    this.lastActivity = Date.now();
  }

  async #run(): Promise<void> {
    const watchSeconds = this.#o.watchSeconds ?? 300;
    while (!this.#stopped) {
      let cause: WatchRestartCause = 'closed';
      try {
        if (!this.#resourceVersion) await this.#relist();
        this.#abort = new AbortController();
        const watchdog = setInterval(() => {
          if (Date.now() - this.lastActivity > 2 * watchSeconds * 1000) this.#abort.abort();
        }, 5_000);
        try {
          await this.#o.client.watch(
            collectionPath(this.#o.kind, this.#o.namespace),
            {
              labelSelector: this.#o.labelSelector,
              resourceVersion: this.#resourceVersion,
              allowWatchBookmarks: true,
              timeoutSeconds: watchSeconds,
            },
            (event) => this.#handle(event),
            this.#abort.signal,
            this.#o.metadataOnly ? METADATA : undefined,
          );
        } finally {
          clearInterval(watchdog);
        }
        // The server ended the watch at its timeout: it answered, so this counts as activity
        // (a quiet kind without bookmarks would otherwise fail /healthz after a while).
        this.lastActivity = Date.now();
        this.#failures = 0;
      } catch (error) {
        if (this.#stopped) return;
        cause =
          error instanceof OperatorError && error.status === 410
            ? 'gone'
            : this.#abort.signal.aborted
              ? 'watchdog'
              : 'error';
        if (cause === 'gone') this.#resourceVersion = '';
        else this.#failures++;
        this.#o.log('warn', 'watch failed, restarting', {
          kind: this.#o.kind,
          cause,
          error: String((error as Error).message ?? error),
        });
      }
      if (this.#stopped) return;
      this.#o.metrics.watchRestarts.inc({ resource: this.#o.kind, cause });
      // Until the first list is in, every reconcile waits for this cache (controller.ts): retry
      // the list at most 2 s apart (an API server starting answers 429 for a while), not 30 s.
      const cap = this.synced ? 30_000 : 2_000;
      const delay = Math.min(cap, this.#failures === 0 ? 0 : 500 * 2 ** Math.min(this.#failures, 6));
      if (delay > 0) await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
    }
  }

  #handle(event: { type: string; object: Record<string, unknown> }): void {
    this.lastActivity = Date.now();
    const object = event.object as KubeObject;
    if (event.type === 'ERROR') {
      const status = (event.object as { code?: number }).code ?? 0;
      // 410 Gone: our resourceVersion is too old; the next loop relists.
      throw new OperatorError(
        status === 410 ? 'API_NOT_FOUND' : 'API_UNAVAILABLE',
        `watch error ${status}`,
        status,
      );
    }
    const rv = object.metadata?.resourceVersion;
    if (rv) this.#resourceVersion = rv;
    if (event.type === 'BOOKMARK') return;
    object.kind = this.#o.kind;
    const k = key(object);
    const old = this.cache.get(k);
    if (event.type === 'DELETED') {
      this.#store(k, undefined, old);
      this.#o.onDelete(object);
    } else {
      this.#store(k, object, old);
      this.#o.onChange(object, old);
    }
  }
}
