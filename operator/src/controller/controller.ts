// The RelayPool controller: informers feed a work queue keyed by pool; a reconcile gathers the
// pool's world from the caches, asks desiredState() what it should be, and hands that to the writer.
import { RolloutSlots } from './rollouts.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Writer } from '../kube/writer.ts';
import { withFields } from '../../../contract/log.ts';
import type { Logger } from '../../../contract/log.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { errorCode } from '../errors.ts';
import { Informer } from './informer.ts';
import { WorkQueue } from './queue.ts';
import { requeueDelay } from './policy.ts';
import { OWNED_KINDS } from '../kube/resources.ts';
import {
  DOMAIN_LABEL,
  INSTANCE_LABEL,
  NOT_OWNED_SELECTOR,
  OWNED_SELECTOR,
  POOL_LABEL,
  RELAY_NAME_SELECTOR,
} from '../desired/meta.ts';
import type { CertificateIssuer, Desired, Generators, KubeObject, TlsSettings } from '../desired/types.ts';
import type { RateLimit, RelayPool, SendingDomain } from '../api/types.ts';
import { withDefaults } from '../api/defaults.ts';
import { RelayScraper } from '../scrape/scraper.ts';
import { DnsVerifier } from '../dns/verifier.ts';
import { domainSeries } from './domain-series.ts';
import type { DomainSeries } from './domain-series.ts';
import { reconcilePool } from './reconcile.ts';
import {
  SecretReferences,
  domainSecretRefs,
  handOffIndexKey,
  indexKeys,
  poolSecretRefs,
} from './cache-index.ts';
import { StatusMemo, statusKey } from '../kube/status-memo.ts';
import type { Lookup } from './cache-index.ts';
import type { ReconcileContext } from './reconcile.ts';
import type { SlowGenerators } from '../kube/generators.ts';

export type ControllerOptions = {
  client: KubeClient;
  writer: Writer;
  log: Logger;
  metrics: OperatorMetrics;
  generators: Generators;
  issuer: CertificateIssuer;
  /** Validity of generated certificates and the cluster's DNS domain. */
  tls?: TlsSettings;
  /** Key generation and password hashing off the event loop (absent: `generators`, inline). */
  slowGenerators?: SlowGenerators;
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  image: string;
  /** Pull secrets of relay pods whose pool names none. */
  imagePullSecrets?: string[];
  /** Pools whose relays roll out at the same time (0: no limit). */
  maxConcurrentRollouts?: number;
  spfInclude?: string;
  /** Namespaces admitted to every relay's management port by its NetworkPolicy (operator's, monitoring). */
  managementNamespaces?: string[];
  workers?: number;
  /** A changed pool waits this long for more changes before its reconcile (WorkQueue batchMs). */
  batchMs?: number;
  /** Every pool is reconciled again this often (a safety net; Secret edits are watched). */
  resyncSeconds?: number;
  /** Relay /metrics scrape interval of the bounce-rate autopilot (0: off). */
  scrapeSeconds?: number;
  /** "namespace/pod" -> metrics URL overrides (JSON file), for relays not reachable at the pod IP. */
  relayMetricsTargets?: string;
  /** DNS verification through this resolver ("ip" or "ip:port"); absent: not verified. */
  dnsServer?: string;
  /** How often published records are looked up again. */
  dnsIntervalSeconds?: number;
  /** How often a missing ServiceMonitor or cert-manager Certificate CRD is looked for again. */
  crdCheckSeconds?: number;
};

/** Kinds of CRDs that may be installed before or after us: prometheus-operator's and cert-manager's. */
const OPTIONAL_KINDS = {
  ServiceMonitor: {
    groupVersion: '/apis/monitoring.coreos.com/v1',
    plural: 'servicemonitors',
    flag: 'serviceMonitorCRD',
  },
  Certificate: { groupVersion: '/apis/cert-manager.io/v1', plural: 'certificates', flag: 'certManagerCRD' },
} as const;

const poolKey = (namespace: string | undefined, name: string | undefined) =>
  `${namespace ?? ''}/${name ?? ''}`;

export class Controller {
  readonly #o: ControllerOptions;
  readonly informers = new Map<string, Informer[]>();
  readonly queue: WorkQueue;
  /** Periodic timers (resync, DNS re-check, CRD re-check), cleared on stop. */
  readonly #timers: NodeJS.Timeout[] = [];
  serviceMonitorCRD = false;
  certManagerCRD = false;
  readonly scraper: RelayScraper | undefined;
  readonly #dns: DnsVerifier | undefined;
  /** "namespace/pool" -> label sets of the sending-domain series last published for that pool. */
  readonly #series = new Map<string, DomainSeries[]>();
  readonly #statuses = new StatusMemo();
  /** Which pools are rolling out their relays now (--max-concurrent-rollouts). */
  readonly #rollouts: RolloutSlots;
  /** Which pools name which Secrets, through their own spec or their domains'. */
  readonly #references = new SecretReferences();

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.#rollouts = new RolloutSlots(o.maxConcurrentRollouts ?? 0);
    this.queue = new WorkQueue({
      workers: o.workers ?? 4,
      batchMs: o.batchMs ?? 0,
      process: (key) => this.#reconcile(key),
      onError: (key, error, attempt) => {
        const code = errorCode(error);
        o.metrics.errors.inc({ code });
        const delay = requeueDelay(code, attempt);
        o.log('warn', 'reconcile failed', {
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
    if ((o.scrapeSeconds ?? 30) > 0) {
      for (const result of ['success', 'error']) o.metrics.relayScrapes.inc({ result }, 0);
      this.scraper = new RelayScraper({
        pods: () => this.cache('Pod'),
        domains: () => this.cache('SendingDomain') as unknown as SendingDomain[],
        log: withFields(o.log, { component: 'scraper' }),
        intervalMs: (o.scrapeSeconds ?? 30) * 1000,
        ...(o.relayMetricsTargets ? { targetsFile: o.relayMetricsTargets } : {}),
        onChange: (key) => this.queue.add(key),
        onScrape: (result) => o.metrics.relayScrapes.inc({ result }),
      });
    }
    if (o.dnsServer) {
      this.#dns = new DnsVerifier({ server: o.dnsServer, intervalMs: (o.dnsIntervalSeconds ?? 300) * 1000 });
    }
  }

  #watch(
    kind: string,
    labelSelector: string | undefined,
    keys: (o: KubeObject, deleted?: boolean) => string[],
    extra: { name?: string; metadataOnly?: boolean } = {},
  ): void {
    const namespaces = this.#o.namespaces.length ? this.#o.namespaces : [undefined];
    const list = namespaces.map(
      (namespace) =>
        new Informer({
          kind,
          namespace,
          labelSelector,
          ...(extra.metadataOnly ? { metadataOnly: true } : {}),
          client: this.#o.client,
          log: this.#o.log,
          metrics: this.#o.metrics,
          index: (object) => indexKeys(kind, object),
          onChange: (object, old) => {
            // The old object first: keys() also notes the Secrets a spec names, and the new spec's
            // must be what stays noted.
            for (const key of new Set([...(old ? keys(old) : []), ...keys(object)])) this.queue.add(key);
          },
          onDelete: (object) => {
            this.#statuses.forget(
              statusKey(kind, object.metadata?.namespace ?? '', object.metadata?.name ?? ''),
            );
            for (const key of keys(object, true)) this.queue.add(key);
          },
        }),
    );
    this.informers.set(extra.name ?? kind, list);
  }

  /** Children of a kind whose CRD may come and go (ServiceMonitor, cert-manager Certificate). */
  #watchOptional(kind: 'ServiceMonitor' | 'Certificate'): void {
    this.#watch(kind, OWNED_SELECTOR, (o) => {
      const pool = o.metadata?.labels?.[POOL_LABEL];
      return pool ? [poolKey(o.metadata?.namespace, pool)] : [];
    });
  }

  /** Pools whose spec (or whose domains' spec) names this Secret. */
  #poolsReferencing(namespace: string | undefined, name: string | undefined): string[] {
    return this.#references.pools(`${namespace ?? ''}/${name ?? ''}`);
  }

  /**
   * Notes which Secrets a pool or domain names; the index is rebuilt only when that changes (not
   * on every status write the watch echoes back).
   */
  #noteReferences(kind: 'RelayPool' | 'SendingDomain', o: KubeObject, deleted = false): void {
    const ns = o.metadata?.namespace ?? '';
    const pool =
      kind === 'RelayPool' ? o.metadata?.name : (o as unknown as SendingDomain).spec?.poolRef?.name;
    const refs =
      kind === 'RelayPool'
        ? poolSecretRefs(o as unknown as RelayPool)
        : domainSecretRefs(o as unknown as SendingDomain);
    this.#references.note(
      `${kind}/${ns}/${o.metadata?.name ?? ''}`,
      pool && !deleted ? poolKey(ns, pool) : undefined,
      refs.map((r) => `${ns}/${r}`),
    );
  }

  #every(seconds: number, run: () => void): void {
    this.#timers.push(setInterval(run, seconds * 1000));
  }

  #enqueueAll(): void {
    for (const pool of this.cache('RelayPool'))
      this.queue.add(poolKey(pool.metadata?.namespace, pool.metadata?.name));
  }

  /** Released by lead(): until then keys collect but no reconcile runs (a standby's queue). */
  #standby: (() => void) | undefined;

  /** Fills the caches, then reconciles: a single operator, or the leader once elected. */
  async start(): Promise<void> {
    await this.watch();
    this.lead();
  }

  /**
   * Reconciles from now on. A standby that has watched and scraped since it started takes over
   * with filled caches and the relays' history (the bounce windows survive a failover), as
   * controller-runtime starts its caches before leader election.
   */
  lead(): void {
    this.#standby?.();
  }

  /**
   * Starts the informers, the relay scraper and the timers, all read-only: no reconcile runs (and so
   * nothing is written) until lead().
   */
  async watch(): Promise<void> {
    this.#standby = this.queue.hold();
    for (const kind of ['ServiceMonitor', 'Certificate'] as const) {
      const { groupVersion, plural, flag } = OPTIONAL_KINDS[kind];
      this[flag] = await this.#detectCRD(groupVersion, plural);
    }
    const byPoolRef = (o: KubeObject) => [
      poolKey(o.metadata?.namespace, (o as unknown as SendingDomain | RateLimit).spec?.poolRef?.name),
    ];
    this.#watch('RelayPool', undefined, (o, deleted) => {
      this.#noteReferences('RelayPool', o, deleted);
      const ns = o.metadata?.namespace ?? '';
      // The pool it hands its queue to on deletion (that pool's NetworkPolicy admits its relays
      // then), and the pools that hand theirs to it (their relay config follows its state).
      const target = (o as unknown as RelayPool).spec?.deletionHandOffTo;
      const sources = this.lookup.indexed('RelayPool', handOffIndexKey(ns, o.metadata?.name ?? ''));
      return [
        poolKey(ns, o.metadata?.name),
        ...(target ? [poolKey(ns, target)] : []),
        ...sources.map((s) => poolKey(ns, s.metadata?.name)),
      ];
    });
    this.#watch('SendingDomain', undefined, (o, deleted) => {
      this.#noteReferences('SendingDomain', o, deleted);
      return byPoolRef(o);
    });
    this.#watch('RateLimit', undefined, byPoolRef);
    // Secrets users reference (TLS, credentials, DKIM keys) are not labelled as ours: watch the
    // metadata of the other Secrets (no data is held; our own are cached in full below) and
    // requeue the pools that name a changed one.
    this.#watch(
      'Secret',
      NOT_OWNED_SELECTOR,
      (o) => this.#poolsReferencing(o.metadata?.namespace, o.metadata?.name),
      {
        name: 'Secret(referenced)',
        metadataOnly: true,
      },
    );
    // Relay pods: the autopilot scrapes the Ready ones. Only a pod's removal needs a reconcile: a
    // retained claim is absorbed once its relay is gone (desired/absorb.ts).
    this.#watch('Pod', `${POOL_LABEL}`, (o, deleted) => {
      const pool = o.metadata?.labels?.[POOL_LABEL];
      return deleted && pool ? [poolKey(o.metadata?.namespace, pool)] : [];
    });
    // StatefulSet spool claims: a removed relay's claim is reported on its pool (desired/claims.ts).
    this.#watch('PersistentVolumeClaim', RELAY_NAME_SELECTOR, (o) => {
      const pool = o.metadata?.labels?.[INSTANCE_LABEL];
      return pool ? [poolKey(o.metadata?.namespace, pool)] : [];
    });
    for (const kind of OWNED_KINDS) {
      if (kind === 'ServiceMonitor' || kind === 'Certificate') {
        if (this[OPTIONAL_KINDS[kind].flag]) this.#watchOptional(kind);
        continue;
      }
      this.#watch(kind, OWNED_SELECTOR, (o) => {
        // One of our Secrets may also be named by another pool's spec (say, as its TLS Secret).
        const referencing =
          kind === 'Secret' ? this.#poolsReferencing(o.metadata?.namespace, o.metadata?.name) : [];
        const pool = o.metadata?.labels?.[POOL_LABEL];
        if (pool) return [poolKey(o.metadata?.namespace, pool), ...referencing];
        // A DKIM key Secret belongs to a SendingDomain: requeue that domain's pool.
        const domain = o.metadata?.labels?.[DOMAIN_LABEL];
        const owner = domain
          ? this.lookup.get('SendingDomain', o.metadata?.namespace ?? '', domain)
          : undefined;
        return owner ? [...byPoolRef(owner), ...referencing] : referencing;
      });
    }
    // No reconcile before every cache is filled: a pool reconciled from a filled RelayPool cache
    // and an empty SendingDomain or RateLimit cache (a slow or retried list after a restart or a
    // failover) would render a relay config with no sending domains and no limits.
    void this.#startSynced([...this.informers.values()].flat());
    this.#every(this.#o.resyncSeconds ?? 300, () => this.#enqueueAll());
    // The pass after the cached answers expire looks the records up again.
    if (this.#dns) this.#every(this.#o.dnsIntervalSeconds ?? 300, () => this.#enqueueAll());
    // prometheus-operator and cert-manager may be installed after us: start managing their kinds
    // when they are.
    this.#every(this.#o.crdCheckSeconds ?? 60, () => {
      for (const kind of ['ServiceMonitor', 'Certificate'] as const) {
        const { groupVersion, plural, flag } = OPTIONAL_KINDS[kind];
        if (this[flag] || this.informers.has(kind)) continue;
        void this.#detectCRD(groupVersion, plural).then((found) => {
          if (!found || this[flag] || this.informers.has(kind)) return;
          void this.#startOptional(kind).then(() => {
            this[flag] = true;
            this.#enqueueAll();
          });
        });
      }
    });
    this.scraper?.start();
  }

  /** Starts informers and holds the work queue until each has filled its cache. */
  #startSynced(informers: Informer[]): Promise<void> {
    const release = this.queue.hold();
    for (const informer of informers) informer.start();
    return Promise.all(informers.map((i) => i.whenSynced)).then(release);
  }

  /** Starts watching a kind whose CRD was installed after us; pools use it once its cache is filled. */
  #startOptional(kind: 'ServiceMonitor' | 'Certificate'): Promise<void> {
    this.#o.log('info', 'CRD found: managing its objects', { kind });
    this.#watchOptional(kind);
    return this.#startSynced(this.informers.get(kind) ?? []);
  }

  stop(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.scraper?.stop();
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

  /** Indexed reads of the caches (one informer per watched namespace, or one for all). */
  readonly lookup: Lookup = {
    get: (kind, namespace, name) => {
      for (const informer of this.informers.get(kind) ?? []) {
        const found = informer.get(namespace, name);
        if (found) return found;
      }
      return undefined;
    },
    indexed: (kind, key) => (this.informers.get(kind) ?? []).flatMap((i) => i.indexed(key)),
  };

  /** Sets this pool's sending-domain gauges and removes the series of domains it no longer has. */
  #publish(key: string, series: DomainSeries[]): void {
    const m = this.#o.metrics;
    for (const old of this.#series.get(key) ?? []) {
      m.domainBounceRate.remove(old.labels);
      m.domainMaxBounceRate.remove(old.labels);
      m.domainComplaintRate.remove(old.labels);
      m.domainMaxComplaintRate.remove(old.labels);
      m.domainSuspended.remove(old.labels);
      for (const c of old.conditions) m.domainCondition.remove({ ...old.labels, ...c });
    }
    for (const s of series) {
      if (s.bounceRate !== undefined) m.domainBounceRate.set(s.labels, s.bounceRate);
      m.domainMaxBounceRate.set(s.labels, s.maxBounceRate);
      if (s.complaintRate !== undefined) m.domainComplaintRate.set(s.labels, s.complaintRate);
      if (s.maxComplaintRate !== undefined) m.domainMaxComplaintRate.set(s.labels, s.maxComplaintRate);
      m.domainSuspended.set(s.labels, s.suspended ? 1 : 0);
      for (const c of s.conditions) m.domainCondition.set({ ...s.labels, ...c }, 1);
    }
    if (series.length) this.#series.set(key, series);
    else this.#series.delete(key);
  }

  async #detectCRD(groupVersion: string, plural: string): Promise<boolean> {
    try {
      const groups = await this.#o.client.request<{ resources?: { name: string }[] }>('GET', groupVersion, {
        verb: 'get',
      });
      return (groups.resources ?? []).some((r) => r.name === plural);
    } catch {
      return false;
    }
  }

  /** The certificate gauge of one pool; the series goes when the pool has no certificate. */
  #publishCertificate(namespace: string, pool: string, certificate: Desired['certificate']): void {
    const m = this.#o.metrics;
    if (!certificate) {
      m.tlsCertificateExpiry.remove({ namespace, pool });
      return;
    }
    m.tlsCertificateExpiry.set({ namespace, pool }, Math.floor(certificate.notAfter.getTime() / 1000));
    if (certificate.issued) m.tlsCertificatesIssued.inc({ namespace, pool, reason: certificate.issued });
  }

  /** Claims reported for each pool, so a claim no longer retained loses its series. */
  readonly #claimSeries = new Map<string, string[]>();

  #publishClaims(namespace: string, pool: string, claims: string[], failures: Record<string, number>): void {
    const key = `${namespace}/${pool}`;
    const { retainedQueueClaims, absorbFailures } = this.#o.metrics;
    for (const claim of this.#claimSeries.get(key) ?? [])
      if (!claims.includes(claim)) {
        retainedQueueClaims.remove({ namespace, pool, claim });
        absorbFailures.remove({ namespace, pool, claim });
      }
    for (const claim of claims) {
      retainedQueueClaims.set({ namespace, pool, claim }, 1);
      absorbFailures.set({ namespace, pool, claim }, failures[claim] ?? 0);
    }
    if (claims.length > 0) this.#claimSeries.set(key, claims);
    else this.#claimSeries.delete(key);
  }

  async #reconcile(key: string): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const end = this.#o.metrics.reconcileDuration.startTimer();
    const context: ReconcileContext = {
      client: this.#o.client,
      writer: this.#o.writer,
      log: withFields(this.#o.log, { pool: name, namespace }),
      generators: this.#o.generators,
      issuer: this.#o.issuer,
      ...(this.#o.slowGenerators ? { slow: this.#o.slowGenerators } : {}),
      lookup: this.lookup,
      statuses: this.#statuses,
      serviceMonitorCRD: this.serviceMonitorCRD,
      certManagerCRD: this.certManagerCRD,
      rollouts: this.#rollouts,
      settings: {
        image: this.#o.image,
        imagePullSecrets: this.#o.imagePullSecrets ?? [],
        ...(this.#o.spfInclude ? { spfInclude: this.#o.spfInclude } : {}),
        ...(this.#o.tls ? { tls: this.#o.tls } : {}),
        managementNamespaces: this.#o.managementNamespaces ?? [],
      },
    };
    const scraper = this.scraper;
    if (scraper) {
      context.bounce = (ns, pool, domains) => scraper.measurements(ns, pool, domains);
      context.scrapedPods = (ns, pool) => scraper.scrapedPods(ns, pool);
      context.rates = (ns, pool, domains) => scraper.rates(ns, pool, domains);
    }
    const dns = this.#dns;
    if (dns) context.dns = (domains) => dns.answers(domains);
    try {
      const { observed, desired, pendingKeys } = await reconcilePool(context, namespace, name);
      const domains = observed.domains.map((d) => withDefaults(d).resource);
      this.#publish(key, domainSeries(namespace, domains, desired.statuses));
      this.#publishCertificate(namespace, name, desired.certificate);
      this.#publishClaims(namespace, name, desired.retainedClaims ?? [], desired.absorbFailures ?? {});
      // A generated certificate is renewed at its renewal time, not at the next resync.
      if (desired.requeueAfterMs !== undefined) this.queue.addAfter(key, desired.requeueAfterMs);
      // Keys beyond this pass's share: the pool is reconciled again once this pass is done.
      if (pendingKeys > 0) this.queue.add(key);
      this.#o.metrics.reconciles.inc({ result: 'success' });
    } catch (error) {
      this.#o.metrics.reconciles.inc({ result: 'error' });
      throw error;
    } finally {
      end();
    }
  }
}
