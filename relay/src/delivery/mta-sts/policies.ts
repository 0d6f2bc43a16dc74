// The relay's MTA-STS policies: looked up per delivery (TXT), fetched when the id changes or the
// cached copy expired, kept per recipient domain for max_age (RFC 8461 §5.1). One per relay,
// surviving config reloads; lookups of one domain running at once share one fetch. Behind the
// memory a store (store.ts): the pool's, or a file; a policy found there is not fetched again.
import { fetchStsPolicy, type AddressLookup, type FetchResult, type StsFetchFailure } from './fetch.ts';
import type { StsPolicyStore } from './store.ts';
import {
  needsFetch,
  parseStsPolicy,
  parseStsRecord,
  usable,
  type CachedPolicy,
  type StsPolicy,
} from './policy.ts';

export interface StsDns extends AddressLookup {
  resolveTxt(name: string): Promise<string[][]>;
}

export interface StsLookup {
  /** The policy in force, if any. */
  policy: StsPolicy | undefined;
  /** Set when a published policy could not be fetched or parsed (and no cached one was in force). */
  failure?: StsFetchFailure | 'sts-policy-invalid';
  detail?: string;
}

export class StsPolicies {
  /** Last good policy per recipient domain, until it expires. */
  private readonly cache = new Map<string, CachedPolicy>();
  /** Lookups in progress per domain. */
  private readonly inflight = new Map<string, Promise<StsLookup>>();
  private readonly now: () => number;
  private readonly fetch: (domain: string, dns: AddressLookup) => Promise<FetchResult>;
  /** Policies beyond this relay's memory (set at start); undefined: memory only. */
  store: StsPolicyStore | undefined;

  constructor(options: { now?: () => number; fetch?: typeof fetchStsPolicy } = {}) {
    this.now = options.now ?? Date.now;
    this.fetch = options.fetch ?? fetchStsPolicy;
  }

  lookup(domain: string, dns: StsDns): Promise<StsLookup> {
    const d = domain.toLowerCase();
    const running = this.inflight.get(d);
    if (running) return running;
    const p = this.resolve(d, dns).finally(() => this.inflight.delete(d));
    this.inflight.set(d, p);
    return p;
  }

  private async resolve(domain: string, dns: StsDns): Promise<StsLookup> {
    // A failed TXT lookup is treated like no record (§5.1): the cached policy, if any, applies.
    const txt = await dns.resolveTxt(`_mta-sts.${domain}`).catch(() => [] as string[][]);
    const id = parseStsRecord(txt);
    let cached = this.cache.get(domain);
    if (this.store && (needsFetch(cached, id, this.now()) || !usable(cached, this.now()))) {
      // A store that does not answer is as if it held nothing: the policy is fetched.
      const stored = await this.store.get(domain).catch(() => undefined);
      if (stored && (!usable(cached, this.now()) || !needsFetch(stored, id, this.now()))) {
        cached = stored;
        this.cache.set(domain, stored);
      }
    }
    if (!needsFetch(cached, id, this.now())) return { policy: usable(cached, this.now()) };
    const fetched = await this.fetch(domain, dns);
    const fallback = usable(cached, this.now());
    if (!fetched.ok)
      return { policy: fallback, ...(fallback ? {} : { failure: fetched.failure, detail: fetched.detail }) };
    const parsed = parseStsPolicy(fetched.body);
    if (!parsed.ok)
      return {
        policy: fallback,
        ...(fallback ? {} : { failure: 'sts-policy-invalid', detail: parsed.error }),
      };
    const entry = { id: id!, policy: parsed.value, expiresAt: this.now() + parsed.value.maxAge * 1000 };
    this.cache.set(domain, entry);
    await this.store?.put(domain, entry).catch(() => undefined);
    return { policy: parsed.value };
  }
}
