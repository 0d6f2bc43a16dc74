// DNS verification's reader: TXT lookups through one configured resolver, cached for the re-check
// interval so reconciles between checks cost no queries. The comparison is desired/dns.ts (pure).
import { Resolver } from 'node:dns/promises';
import { withDefaults } from '../api/defaults.ts';
import type { SendingDomain } from '../api/types.ts';
import { recordNames } from '../desired/dns.ts';
import type { TxtAnswers } from '../desired/dns.ts';

export type DnsVerifierOptions = {
  /** "ip" or "ip:port" of the resolver to ask. */
  server: string;
  /** Answers are reused for this long, then asked again. */
  intervalMs: number;
  timeoutMs?: number;
  now?: () => number;
};

type Cached = { at: number; answer: string[][] | { error: string } };

// "No such name" and "no TXT at that name" both mean: nothing published.
const NOTHING_PUBLISHED = new Set(['ENOTFOUND', 'ENODATA']);

export class DnsVerifier {
  readonly #o: DnsVerifierOptions;
  readonly #resolver: Resolver;
  /** TXT name -> last answer and when it was asked. */
  readonly #cache = new Map<string, Cached>();

  constructor(o: DnsVerifierOptions) {
    this.#o = o;
    this.#resolver = new Resolver({ timeout: o.timeoutMs ?? 2000, tries: 2 });
    this.#resolver.setServers([o.server]);
  }

  async #lookup(name: string, now: number): Promise<Cached['answer']> {
    const cached = this.#cache.get(name);
    if (cached && now - cached.at < this.#o.intervalMs) return cached.answer;
    let answer: Cached['answer'];
    try {
      answer = await this.#resolver.resolveTxt(name);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'error';
      answer = NOTHING_PUBLISHED.has(code) ? [] : { error: code };
    }
    this.#cache.set(name, { at: now, answer });
    return answer;
  }

  /** TXT answers per SendingDomain name, for each domain's records. */
  async answers(domains: SendingDomain[]): Promise<Map<string, TxtAnswers>> {
    const now = this.#o.now?.() ?? Date.now();
    const out = new Map<string, TxtAnswers>();
    await Promise.all(
      domains.map(async (d) => {
        const answers: TxtAnswers = {};
        for (const name of recordNames(withDefaults(d).resource.spec))
          answers[name] = await this.#lookup(name, now);
        out.set(d.metadata.name ?? '', answers);
      }),
    );
    return out;
  }
}
