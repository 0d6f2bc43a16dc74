// The bounce-rate autopilot's eyes: every interval, scrape each Ready pod of a pool (its relays, and
// its tracker's pods for the opens and clicks of status.rates) at /metrics, keep a short history per
// pod, and requeue a pool when its domains' measurements change. Reads only.
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { SendingDomain } from '../api/types.ts';
import type { BounceMeasurement } from '../desired/bounce.ts';
import type { ScrapedPod } from '../desired/scraped.ts';
import type { KubeObject } from '../desired/types.ts';
import { HTTP_PORT, POOL_LABEL } from '../desired/meta.ts';
import type { Logger } from '../../../contract/log.ts';
import { durationMs } from '../../../contract/duration.ts';
import {
  intakeClosedSince,
  parseRelayMetrics,
  poolMeasurement,
  poolOutcomes,
  quietSince,
} from './relay-metrics.ts';
import { RATES_WINDOW, type DomainCounts } from '../desired/rates.ts';
import type { RelaySample } from './relay-metrics.ts';

export type ScraperOptions = {
  /** The pools' pods (the Pod informer's cache): relays and trackers. */
  pods: () => KubeObject[];
  domains: () => SendingDomain[];
  log: Logger;
  intervalMs: number;
  /**
   * A JSON file mapping "namespace/pod" to a metrics URL, read on every round. Where pods are not
   * reachable at their IP (the local demo and the tests run the relays on loopback).
   */
  targetsFile?: string;
  /** Called with "namespace/pool" when a pool's measurements changed. */
  onChange: (poolKey: string) => void;
  fetchTimeoutMs?: number;
  now?: () => number;
  /** Counts each scrape by result (the operator's relay_scrapes_total). */
  onScrape?: (result: 'success' | 'error') => void;
};

/** A relay pod's metrics URL: an IPv6 pod IP goes in brackets (RFC 3986 §3.2.2). */
export function relayMetricsUrl(ip: string, port = HTTP_PORT): string {
  return `http://${isIPv6(ip) ? `[${ip}]` : ip}:${port}/metrics`;
}

type PodHistory = { namespace: string; pool: string; kind: ScrapedPod['kind']; samples: RelaySample[] };

const DEFAULT_WINDOW = '1h';
const windowOf = (d: SendingDomain) => durationMs(d.spec.bouncePolicy?.window ?? DEFAULT_WINDOW);

/** A pod of the pool's tracker Deployment (desired/tracker.ts): no queue; opens, clicks, events. */
const kindOf = (pod: KubeObject): ScrapedPod['kind'] =>
  pod.metadata?.labels?.['app.kubernetes.io/name'] === 'mailfleet-tracker' ? 'tracker' : 'relay';

function ready(pod: KubeObject): boolean {
  const status = pod.status as
    { podIP?: string; conditions?: { type: string; status: string }[] } | undefined;
  return !!status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

export class RelayScraper {
  readonly #o: ScraperOptions;
  /** "namespace/pod" -> the samples of that relay, oldest first (kept after the pod is gone). */
  readonly #history = new Map<string, PodHistory>();
  /** "namespace/pool" -> the measurements last handed to a reconcile (JSON), to requeue on change. */
  readonly #published = new Map<string, string>();
  /** "namespace/pool" -> which of its relays reach the shared store (JSON), to requeue on change. */
  readonly #storeSeen = new Map<string, string>();
  /** "namespace/pool" -> which of its relays read intake open (JSON): a Drain deletion waits on it. */
  readonly #intakeSeen = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** Pods whose last scrape failed: warned about once per failure streak. */
  readonly #failing = new Set<string>();

  constructor(o: ScraperOptions) {
    this.#o = o;
  }

  start(): void {
    const tick = () => {
      if (this.#running) return;
      this.#running = true;
      void this.scrapeOnce()
        .catch((error) => this.#o.log('warn', 'relay scrape round failed', { error: String(error) }))
        .finally(() => (this.#running = false));
    };
    this.#timer = setInterval(tick, this.#o.intervalMs);
    tick();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  #targets(): Record<string, string> {
    if (!this.#o.targetsFile) return {};
    try {
      return JSON.parse(readFileSync(this.#o.targetsFile, 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }

  async scrapeOnce(): Promise<void> {
    const now = this.#o.now?.() ?? Date.now();
    const targets = this.#targets();
    const all = this.#o.pods();
    // Pools with a tracker pod in the cache, whatever its state: one that is stopping may still
    // hand its events to a relay, so a relay read in this round is not final for events until none is.
    const tracked = new Set(
      all
        .filter((p) => kindOf(p) === 'tracker')
        .map((p) => `${p.metadata?.namespace ?? ''}/${p.metadata?.labels?.[POOL_LABEL] ?? ''}`),
    );
    const pods = all.filter(ready);
    await Promise.all(
      pods.map(async (pod) => {
        const namespace = pod.metadata?.namespace ?? '';
        const key = `${namespace}/${pod.metadata?.name ?? ''}`;
        const pool = pod.metadata?.labels?.[POOL_LABEL];
        const ip = (pod.status as { podIP?: string } | undefined)?.podIP;
        const url = targets[key] ?? (ip ? relayMetricsUrl(ip) : undefined);
        if (!pool || !url) return;
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(this.#o.fetchTimeoutMs ?? 5000) });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const sample = parseRelayMetrics(await res.text(), now);
          sample.trackerPods = tracked.has(`${namespace}/${pool}`);
          const history = this.#history.get(key) ?? { namespace, pool, kind: kindOf(pod), samples: [] };
          history.samples.push(sample);
          this.#history.set(key, history);
          this.#o.onScrape?.('success');
          if (this.#failing.delete(key)) this.#o.log('info', 'relay scraped again', { pod: key });
        } catch (error) {
          this.#o.onScrape?.('error');
          // A relay the autopilot cannot read is a relay whose bounces it does not see: say so.
          if (!this.#failing.has(key))
            this.#o.log('warn', 'relay not scraped', { pod: key, url, error: String(error) });
          this.#failing.add(key);
        }
      }),
    );
    this.#prune(now);
    this.#notify(now);
  }

  /** Keeps, per pod, the samples of the longest window plus the one before it (the baseline). */
  #prune(now: number): void {
    const longest = Math.max(
      durationMs(DEFAULT_WINDOW),
      durationMs(RATES_WINDOW),
      ...this.#o.domains().map(windowOf),
    );
    const horizon = now - longest;
    for (const [key, history] of this.#history) {
      let first = history.samples.findIndex((s) => s.at > horizon);
      if (first === -1) first = history.samples.length;
      history.samples.splice(0, Math.max(0, first - 1));
      if ((history.samples.at(-1)?.at ?? 0) <= horizon) this.#history.delete(key);
    }
  }

  #notify(now: number): void {
    const byPool = new Map<string, SendingDomain[]>();
    for (const d of this.#o.domains()) {
      const key = `${d.metadata.namespace ?? ''}/${d.spec.poolRef?.name ?? ''}`;
      byPool.set(key, [...(byPool.get(key) ?? []), d]);
    }
    // Histories grouped once per round: a pool's lookup must not scan every relay of the cluster.
    const relaysByPool = new Map<string, RelaySample[][]>();
    for (const h of this.#history.values()) {
      const key = `${h.namespace}/${h.pool}`;
      relaysByPool.set(key, [...(relaysByPool.get(key) ?? []), h.samples]);
    }
    // A pool with an events backlog is looked at again when the age doubles (EventsDelivering).
    for (const [key, relays] of relaysByPool)
      if (relays.some((samples) => samples.at(-1)?.eventsOldest !== undefined))
        byPool.set(key, byPool.get(key) ?? []);
    // A relay losing (or finding again) the shared store changes the pool's SharedStateAvailable;
    // a relay's intake closing moves a Drain deletion on (ClosingIntake, then DrainingQueue).
    this.#requeueOnFlip(this.#storeSeen, (s) => s.sharedStateUp);
    this.#requeueOnFlip(this.#intakeSeen, (s) => s.intakeOpen);
    for (const [key, domains] of byPool) {
      const measured = [
        ...measure(relaysByPool.get(key) ?? [], domains, now),
        ...lastHour(relaysByPool.get(key) ?? [], domains, now),
      ];
      const lag = (relaysByPool.get(key) ?? []).map((s) =>
        Math.floor(Math.log2((s.at(-1)?.eventsOldest ?? 0) + 1)),
      );
      const fingerprint = JSON.stringify([...measured, ...(lag.some((l) => l > 0) ? [lag] : [])]);
      if (this.#published.get(key) === fingerprint) continue;
      this.#published.set(key, fingerprint);
      this.#o.onChange(key);
    }
  }

  /** Requeues each pool whose relays' latest `reading` changed since the last round. */
  #requeueOnFlip(seen: Map<string, string>, reading: (s: RelaySample) => boolean | undefined): void {
    const byPool = new Map<string, [string, boolean][]>();
    for (const [pod, h] of this.#history) {
      const value = h.samples.at(-1);
      const flag = value ? reading(value) : undefined;
      if (flag === undefined) continue;
      const key = `${h.namespace}/${h.pool}`;
      byPool.set(key, [...(byPool.get(key) ?? []), [pod, flag]]);
    }
    for (const [key, readings] of byPool) {
      const fingerprint = JSON.stringify(readings.sort());
      if (seen.get(key) === fingerprint) continue;
      seen.set(key, fingerprint);
      this.#o.onChange(key);
    }
  }

  /**
   * Every pod of the pool in the cache, relay or tracker, and its latest reading: a pod not Ready or
   * never scraped has none, so its queue and its events backlog count as unknown, never as empty.
   */
  scrapedPods(namespace: string, pool: string): ScrapedPod[] {
    return this.#o
      .pods()
      .filter((p) => p.metadata?.namespace === namespace && p.metadata?.labels?.[POOL_LABEL] === pool)
      .map((p): ScrapedPod => {
        const name = p.metadata?.name ?? '';
        // A pod that is not Ready now is not scraped now: what it said before may be out of date.
        const samples = ready(p) ? this.#history.get(`${namespace}/${name}`)?.samples : undefined;
        const last = samples?.at(-1);
        const events = last?.eventsOldest === undefined ? {} : { eventsOldestSeconds: last.eventsOldest };
        if (kindOf(p) === 'tracker')
          return { kind: 'tracker', pod: name, ...(last ? { scrapedAt: last.at } : {}), ...events };
        const reading: ScrapedPod =
          last?.queued === undefined
            ? { kind: 'relay', pod: name }
            : { kind: 'relay', pod: name, queued: last.queued, scrapedAt: last.at };
        Object.assign(reading, events);
        if (last?.sharedStateUp !== undefined) reading.sharedStateUp = last.sharedStateUp;
        const closedAt = samples ? intakeClosedSince(samples) : undefined;
        if (closedAt !== undefined) reading.intakeClosedAt = closedAt;
        if (last?.eventsUnsent !== undefined) reading.eventsUnsent = last.eventsUnsent;
        const quiet = samples ? quietSince(samples) : undefined;
        if (quiet !== undefined) reading.quietSince = quiet;
        return reading;
      });
  }

  /** Each SendingDomain's measurement over its own policy window, by SendingDomain name. */
  measurements(
    namespace: string,
    pool: string,
    domains: SendingDomain[],
    now = this.#o.now?.() ?? Date.now(),
  ): Map<string, BounceMeasurement> {
    const relays = [...this.#history.values()]
      .filter((h) => h.namespace === namespace && h.pool === pool)
      .map((h) => h.samples);
    return measure(relays, domains, now);
  }

  /** Each SendingDomain's counts over the last hour (status.rates), relays and trackers together. */
  rates(
    namespace: string,
    pool: string,
    domains: SendingDomain[],
    now = this.#o.now?.() ?? Date.now(),
  ): Map<string, DomainCounts> {
    const pods = [...this.#history.values()]
      .filter((h) => h.namespace === namespace && h.pool === pool)
      .map((h) => h.samples);
    return lastHour(pods, domains, now);
  }
}

function lastHour(pods: RelaySample[][], domains: SendingDomain[], now: number) {
  const out = new Map<string, DomainCounts>();
  for (const d of domains) {
    const counts = poolOutcomes(pods, d.spec.domain.toLowerCase(), now - durationMs(RATES_WINDOW));
    if (counts) out.set(d.metadata.name ?? '', counts);
  }
  return out;
}

function measure(relays: RelaySample[][], domains: SendingDomain[], now: number) {
  const out = new Map<string, BounceMeasurement>();
  for (const d of domains) {
    const m = poolMeasurement(relays, d.spec.domain.toLowerCase(), now - windowOf(d));
    if (m) out.set(d.metadata.name ?? '', m);
  }
  return out;
}
