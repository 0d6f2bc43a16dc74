// The RelayPool controller: informers feed a work queue keyed by pool; a reconcile gathers the
// pool's world from the caches, asks desiredState() what it should be, and hands that to the writer.
import type { KubeClient } from '../kube/client.ts';
import type { Writer } from '../kube/writer.ts';
import type { Logger } from '../log.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { errorCode } from '../errors.ts';
import { Informer } from './informer.ts';
import { WorkQueue } from './queue.ts';
import { requeueDelay } from './policy.ts';
import { OWNED_KINDS } from '../kube/resources.ts';
import { DOMAIN_LABEL, OWNED_SELECTOR, POOL_LABEL } from '../desired/meta.ts';
import type { Generators, KubeObject } from '../desired/types.ts';
import type { RateLimit, SendingDomain } from '../api/types.ts';
import { reconcilePool } from './reconcile.ts';
import type { ReconcileContext } from './reconcile.ts';

export type ControllerOptions = {
  client: KubeClient;
  writer: Writer;
  log: Logger;
  metrics: OperatorMetrics;
  generators: Generators;
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  image: string;
  spfInclude?: string;
  workers?: number;
  /** Every pool is reconciled again this often (picks up edits of referenced Secrets). */
  resyncSeconds?: number;
};

const poolKey = (namespace: string | undefined, name: string | undefined) =>
  `${namespace ?? ''}/${name ?? ''}`;

export class Controller {
  readonly #o: ControllerOptions;
  readonly informers = new Map<string, Informer[]>();
  readonly queue: WorkQueue;
  #resync: NodeJS.Timeout | undefined;
  serviceMonitorCRD = false;

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.queue = new WorkQueue({
      workers: o.workers ?? 4,
      process: (key) => this.#reconcile(key),
      onError: (key, error, attempt) => {
        const code = errorCode(error);
        o.metrics.errors.inc({ code });
        const delay = requeueDelay(code, attempt);
        o.log.warn('reconcile failed', {
          pool: key,
          code,
          attempt,
          retryInMs: delay,
          error: String((error as Error).message ?? error),
        });
        return delay;
      },
      onDepth: (depth) => o.metrics.queueDepth.set(depth),
    });
  }

  #watch(kind: string, labelSelector: string | undefined, keys: (o: KubeObject) => string[]): void {
    const namespaces = this.#o.namespaces.length ? this.#o.namespaces : [undefined];
    const list = namespaces.map(
      (namespace) =>
        new Informer({
          kind,
          namespace,
          labelSelector,
          client: this.#o.client,
          log: this.#o.log,
          metrics: this.#o.metrics,
          onChange: (object, old) => {
            for (const key of new Set([...keys(object), ...(old ? keys(old) : [])])) this.queue.add(key);
          },
          onDelete: (object) => {
            for (const key of keys(object)) this.queue.add(key);
          },
        }),
    );
    this.informers.set(kind, list);
  }

  async start(): Promise<void> {
    this.serviceMonitorCRD = await this.#detectServiceMonitors();
    const byPoolRef = (o: KubeObject) => [
      poolKey(o.metadata?.namespace, (o as unknown as SendingDomain | RateLimit).spec?.poolRef?.name),
    ];
    this.#watch('RelayPool', undefined, (o) => [poolKey(o.metadata?.namespace, o.metadata?.name)]);
    this.#watch('SendingDomain', undefined, byPoolRef);
    this.#watch('RateLimit', undefined, byPoolRef);
    for (const kind of OWNED_KINDS) {
      if (kind === 'ServiceMonitor' && !this.serviceMonitorCRD) continue;
      this.#watch(kind, OWNED_SELECTOR, (o) => {
        const pool = o.metadata?.labels?.[POOL_LABEL];
        if (pool) return [poolKey(o.metadata?.namespace, pool)];
        // A DKIM key Secret belongs to a SendingDomain: requeue that domain's pool.
        const domain = o.metadata?.labels?.[DOMAIN_LABEL];
        const owner = domain
          ? this.cache('SendingDomain').find(
              (d) => d.metadata?.namespace === o.metadata?.namespace && d.metadata?.name === domain,
            )
          : undefined;
        return owner ? byPoolRef(owner) : [];
      });
    }
    for (const list of this.informers.values()) for (const informer of list) informer.start();
    const resync = (this.#o.resyncSeconds ?? 300) * 1000;
    this.#resync = setInterval(() => {
      for (const pool of this.cache('RelayPool'))
        this.queue.add(poolKey(pool.metadata?.namespace, pool.metadata?.name));
    }, resync);
  }

  stop(): void {
    if (this.#resync) clearInterval(this.#resync);
    this.queue.stop();
    for (const list of this.informers.values()) for (const informer of list) informer.stop();
  }

  /** All informers have listed once. */
  get synced(): boolean {
    return [...this.informers.values()].every((list) => list.every((i) => i.synced));
  }

  /** Seconds since the quietest informer last heard from the API server. */
  get oldestActivitySeconds(): number {
    const times = [...this.informers.values()].flat().map((i) => i.lastActivity);
    return times.length ? (Date.now() - Math.min(...times)) / 1000 : 0;
  }

  cache(kind: string): KubeObject[] {
    return (this.informers.get(kind) ?? []).flatMap((i) => i.list());
  }

  async #detectServiceMonitors(): Promise<boolean> {
    try {
      const groups = await this.#o.client.request<{ resources?: { name: string }[] }>(
        'GET',
        '/apis/monitoring.coreos.com/v1',
        { verb: 'get' },
      );
      return (groups.resources ?? []).some((r) => r.name === 'servicemonitors');
    } catch {
      return false;
    }
  }

  async #reconcile(key: string): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const end = this.#o.metrics.reconcileDuration.startTimer();
    const context: ReconcileContext = {
      client: this.#o.client,
      writer: this.#o.writer,
      log: this.#o.log.with({ pool: name, namespace }),
      generators: this.#o.generators,
      cache: (kind) => this.cache(kind),
      serviceMonitorCRD: this.serviceMonitorCRD,
      settings: { image: this.#o.image, ...(this.#o.spfInclude ? { spfInclude: this.#o.spfInclude } : {}) },
    };
    try {
      await reconcilePool(context, namespace, name);
      this.#o.metrics.reconciles.inc({ result: 'success' });
    } catch (error) {
      this.#o.metrics.reconciles.inc({ result: 'error' });
      throw error;
    } finally {
      end();
    }
  }
}
