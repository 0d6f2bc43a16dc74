// Leader election with a coordination.k8s.io Lease, as client-go's leaderelection does it:
// - expiry is judged by this process's own clock: a held lease is free only after it has stayed
//   unchanged for a whole lease duration since we last saw it change (never from the holder's
//   renewTime against our clock: a skewed clock would take a lease that is still held);
// - one renewal at a time, each bounded by what is left of the renew deadline, which is shorter
//   than the lease: a leader that cannot renew within it stops before a standby may take over;
// - on loss, onLost runs once (the caller fences its client: writes in flight are cut off).
import type { KubeClient } from './client.ts';
import { OperatorError } from '../errors.ts';
import { objectPath, collectionPath } from './resources.ts';
import type { Logger } from '../../../contract/log.ts';

export type Lease = {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
};

export type LeaderOptions = {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  /** How long a lease holds without renewal (default 15 s). */
  durationSeconds?: number;
  /** A leader that has not renewed for this long gives up (default 10 s; below the duration). */
  renewDeadlineSeconds?: number;
  /** Pause between renewals, and between tries to acquire (default 2 s). */
  retrySeconds?: number;
  onLost: () => void;
  /** This process's clock (tests skew it). */
  now?: () => number;
};

/** What we last saw of the lease, and when by our own clock. */
export type Observation = { record: string; at: number };

const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');
const recordOf = (lease: Lease) =>
  `${lease.spec.holderIdentity ?? ''}|${lease.spec.renewTime ?? ''}|${lease.metadata.resourceVersion ?? ''}`;

/** The observation after seeing `lease` at `now`: its time moves only when the lease changed. */
export function observe(previous: Observation | undefined, lease: Lease, now: number): Observation {
  const record = recordOf(lease);
  return previous?.record === record ? previous : { record, at: now };
}

/** May `identity` take the lease it observed? Free, its own, or unchanged for a whole duration. */
export function mayAcquire(lease: Lease, seen: Observation, identity: string, now: number): boolean {
  const holder = lease.spec.holderIdentity;
  if (!holder || holder === identity) return true;
  const durationMs = (lease.spec.leaseDurationSeconds ?? 15) * 1000;
  return seen.at + durationMs <= now;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

export class LeaderElector {
  readonly #o: LeaderOptions;
  readonly #now: () => number;
  /** True from a successful acquire until loss or release. */
  #leading = false;
  /** The lease as last written by us. */
  #lease: Lease | undefined;
  /** The lease as last read, and when it last changed by our clock. */
  #seen: Observation | undefined;
  /** Aborted by release(): ends the renew loop and any request of it in flight. */
  readonly #stop = new AbortController();

  constructor(o: LeaderOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  get leading(): boolean {
    return this.#leading;
  }

  get #durationSeconds(): number {
    return this.#o.durationSeconds ?? 15;
  }

  /** Resolves once this process leads (or when the signal aborts). */
  async acquire(signal: AbortSignal): Promise<void> {
    const retryMs = (this.#o.retrySeconds ?? 2) * 1000;
    while (!signal.aborted) {
      const started = this.#now();
      const won = await this.#tryAcquire(AbortSignal.any([signal, AbortSignal.timeout(retryMs * 5)])).catch(
        (error: unknown) => {
          this.#o.log('warn', 'could not acquire the lease', { error: String(error) });
          return false;
        },
      );
      if (won) {
        this.#leading = true;
        this.#o.log('info', 'became leader', { identity: this.#o.identity });
        void this.#renewLoop(started);
        return;
      }
      await sleep(retryMs, signal);
    }
  }

  async #tryAcquire(signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name, identity } = this.#o;
    let lease: Lease | undefined;
    try {
      lease = await client.request<Lease>('GET', objectPath('Lease', namespace, name), {
        verb: 'get',
        signal,
        unfenced: true,
      });
    } catch (error) {
      if (!(error instanceof OperatorError && error.status === 404)) throw error;
    }
    const now = this.#now();
    if (!lease) {
      this.#lease = await client.request<Lease>('POST', collectionPath('Lease', namespace), {
        verb: 'create',
        signal,
        unfenced: true,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: this.#durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
      });
      return true;
    }
    this.#seen = observe(this.#seen, lease, now);
    if (!mayAcquire(lease, this.#seen, identity, now)) return false;
    const holder = lease.spec.holderIdentity;
    lease.spec = {
      holderIdentity: identity,
      leaseDurationSeconds: this.#durationSeconds,
      acquireTime: holder === identity ? (lease.spec.acquireTime ?? microTime(now)) : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
    };
    // A PUT with the resourceVersion we read: a standby that took it meanwhile makes this a 409.
    this.#lease = await client.request<Lease>('PUT', objectPath('Lease', namespace, name), {
      verb: 'update',
      signal,
      unfenced: true,
      body: lease,
    });
    return true;
  }

  /** Renews one at a time until the deadline passes without a renewal, or release(). */
  async #renewLoop(renewedAt: number): Promise<void> {
    const deadlineMs = (this.#o.renewDeadlineSeconds ?? 10) * 1000;
    const retryMs = (this.#o.retrySeconds ?? 2) * 1000;
    let lastRenewal = renewedAt;
    while (this.#leading && !this.#stop.signal.aborted) {
      await sleep(retryMs, this.#stop.signal);
      if (!this.#leading || this.#stop.signal.aborted) return;
      const left = deadlineMs - (this.#now() - lastRenewal);
      if (left <= 0) return this.#lose('no renewal within the renew deadline');
      const attemptAt = this.#now();
      try {
        await this.#renewOnce(AbortSignal.any([this.#stop.signal, AbortSignal.timeout(left)]));
        // The lease runs from when the renewal was sent, not from when its answer came back.
        lastRenewal = attemptAt;
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        if (error instanceof OperatorError && error.status === 409) {
          // Someone wrote the lease: ours still if an earlier renewal landed after all.
          const current = await this.#o.client
            .request<Lease>('GET', objectPath('Lease', this.#o.namespace, this.#o.name), {
              verb: 'get',
              unfenced: true,
              signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(Math.max(1, left))]),
            })
            .catch(() => undefined);
          if (current && current.spec.holderIdentity !== this.#o.identity)
            return this.#lose(`the lease is held by ${current.spec.holderIdentity ?? 'nobody'}`);
          if (current) this.#lease = current;
        }
        this.#o.log('warn', 'lease renewal failed', { error: String(error) });
      }
    }
  }

  async #renewOnce(signal: AbortSignal): Promise<void> {
    if (!this.#lease) return;
    const lease = structuredClone(this.#lease);
    lease.spec.renewTime = microTime(this.#now());
    this.#lease = await this.#o.client.request<Lease>(
      'PUT',
      objectPath('Lease', this.#o.namespace, this.#o.name),
      { verb: 'update', body: lease, signal, unfenced: true },
    );
  }

  #lose(why: string): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#o.log('error', 'lost leadership', { reason: why });
    this.#o.onLost();
  }

  /** Gives the lease up (holder cleared) so a standby takes over without waiting for expiry. */
  async release(): Promise<void> {
    const held = this.#leading;
    this.#leading = false;
    this.#stop.abort();
    if (!held || !this.#lease) return;
    const lease = structuredClone(this.#lease);
    lease.spec.holderIdentity = null;
    lease.spec.renewTime = microTime(0);
    await this.#o.client
      .request('PUT', objectPath('Lease', this.#o.namespace, this.#o.name), {
        verb: 'update',
        body: lease,
        unfenced: true,
        signal: AbortSignal.timeout(5_000),
      })
      .catch((error) => this.#o.log('warn', 'could not release the lease', { error: String(error) }));
  }
}
