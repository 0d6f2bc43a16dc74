// Leader election with a coordination.k8s.io Lease: acquire when free or expired, renew while
// held (optimistic concurrency on resourceVersion), release on shutdown so a peer takes over at once.
import type { KubeClient } from './client.ts';
import { OperatorError } from '../errors.ts';
import { objectPath, collectionPath } from './resources.ts';
import type { Logger } from '../log.ts';

type Lease = {
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
  durationSeconds?: number;
  renewSeconds?: number;
  onLost: () => void;
};

const microTime = (d: Date) => d.toISOString().replace(/Z$/, '000Z');

export class LeaderElector {
  readonly #o: LeaderOptions;
  #leading = false;
  #timer: NodeJS.Timeout | undefined;
  #lease: Lease | undefined;

  constructor(o: LeaderOptions) {
    this.#o = o;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Resolves once this process leads. */
  async acquire(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (await this.#tryAcquire().catch(() => false)) {
        this.#leading = true;
        this.#o.log.info('became leader', { identity: this.#o.identity });
        this.#timer = setInterval(() => void this.#renew(), (this.#o.renewSeconds ?? 5) * 1000);
        return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  async #tryAcquire(): Promise<boolean> {
    const { client, namespace, name, identity } = this.#o;
    const duration = this.#o.durationSeconds ?? 15;
    const now = new Date();
    let lease: Lease | undefined;
    try {
      lease = await client.request<Lease>('GET', objectPath('Lease', namespace, name), { verb: 'get' });
    } catch (error) {
      if (!(error instanceof OperatorError && error.status === 404)) throw error;
    }
    if (!lease) {
      this.#lease = await client.request<Lease>('POST', collectionPath('Lease', namespace), {
        verb: 'create',
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: duration,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        },
      });
      return true;
    }
    const renewed = Date.parse(lease.spec.renewTime ?? '') || 0;
    const expired = renewed + (lease.spec.leaseDurationSeconds ?? duration) * 1000 < now.getTime();
    const holder = lease.spec.holderIdentity;
    if (holder && holder !== identity && !expired) return false;
    lease.spec = {
      holderIdentity: identity,
      leaseDurationSeconds: duration,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
    };
    this.#lease = await client.request<Lease>('PUT', objectPath('Lease', namespace, name), {
      verb: 'update',
      body: lease,
    });
    return true;
  }

  async #renew(): Promise<void> {
    if (!this.#lease) return;
    const lease = structuredClone(this.#lease);
    lease.spec.renewTime = microTime(new Date());
    try {
      this.#lease = await this.#o.client.request<Lease>(
        'PUT',
        objectPath('Lease', this.#o.namespace, this.#o.name),
        { verb: 'update', body: lease },
      );
    } catch (error) {
      const renewed = Date.parse(this.#lease.spec.renewTime ?? '') || 0;
      // Lost for good on a conflict (someone else took it) or once the lease has run out.
      if (
        (error instanceof OperatorError && error.status === 409) ||
        Date.now() - renewed > (this.#o.durationSeconds ?? 15) * 1000
      ) {
        this.#o.log.error('lost leadership', { error: String(error) });
        this.#stopRenewing();
        this.#o.onLost();
      }
    }
  }

  #stopRenewing(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#leading = false;
  }

  /** Gives the lease up (holder cleared) so a standby takes over without waiting for expiry. */
  async release(): Promise<void> {
    const held = this.#leading;
    this.#stopRenewing();
    if (!held || !this.#lease) return;
    const lease = structuredClone(this.#lease);
    lease.spec.holderIdentity = null;
    lease.spec.renewTime = microTime(new Date(0));
    await this.#o.client
      .request('PUT', objectPath('Lease', this.#o.namespace, this.#o.name), { verb: 'update', body: lease })
      .catch((error) => this.#o.log.warn('could not release the lease', { error: String(error) }));
  }
}
