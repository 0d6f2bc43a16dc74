// Unique opens: the first fetch of a message's open pixel by each reader class (human or machine)
// counts once, later fetches only in the total. A token names the message, not the recipient (the
// relay rewrites a message once for all its recipients, before DKIM signing), so "unique" is per
// message. With the pool's shared store (spec.sharedState) the tracker pods decide together: the
// first SET NX of the message's key wins, the key kept SHARED_UNIQUE_TTL_MS. Without it, or while
// the store does not answer, each pod decides on its own memory: the most recently opened `max`
// messages, so a message opened again after that many others, or at another tracker pod, counts
// again.

/** Messages remembered per tracker pod: ~100 bytes each, about 10 MB at the default. */
const UNIQUE_OPENS_REMEMBERED = 100_000;
/** How long the shared store remembers a first open: an open of the same message later counts again. */
export const SHARED_UNIQUE_TTL_MS = 7 * 24 * 3600 * 1000;

export class UniqueOpens {
  /** "reader\0domain\0messageId" of the messages seen, least recently opened first. */
  private readonly seen = new Set<string>();
  private readonly max: number;

  constructor(max = UNIQUE_OPENS_REMEMBERED) {
    this.max = max;
  }

  /** Records an open; true when it is the first of this message by this reader class. */
  first(reader: string, domain: string, messageId: string): boolean {
    const key = `${reader}\0${domain}\0${messageId}`;
    const known = this.seen.delete(key);
    this.seen.add(key);
    if (this.seen.size > this.max) this.seen.delete(this.seen.values().next().value!);
    return !known;
  }
}

/** The shared store's answer to SET NX: `first` it set the key, `seen` the key was there, `down` no answer. */
export type StoreAnswer = 'first' | 'seen' | 'down';

interface UniqueVerdict {
  first: boolean;
  /** Decided on this pod's memory because the store did not answer. */
  fallback: boolean;
}

/** Whether an open is the first: the store's answer when it gave one, else this pod's memory. Pure. */
export function uniqueVerdict(store: StoreAnswer | undefined, local: boolean): UniqueVerdict {
  if (store === 'first') return { first: true, fallback: false };
  if (store === 'seen') return { first: false, fallback: false };
  return { first: local, fallback: store === 'down' };
}

/** SET NX of one key in the pool's store (tracker/shared-unique.ts); undefined: no store. */
export type UniqueStore = (reader: string, domain: string, messageId: string) => Promise<StoreAnswer>;

/** The tracker's unique-open decision: the pool's store when there is one, this pod's memory always kept too. */
export class PoolUniqueOpens {
  private readonly local: UniqueOpens;
  private readonly store: UniqueStore | undefined;

  constructor(store?: UniqueStore, local = new UniqueOpens()) {
    this.store = store;
    this.local = local;
  }

  async first(reader: string, domain: string, messageId: string): Promise<UniqueVerdict> {
    // Recorded here in every case: while the store is down, this pod still knows what it saw.
    const local = this.local.first(reader, domain, messageId);
    const answer = this.store ? await this.store(reader, domain, messageId) : undefined;
    return uniqueVerdict(answer, local);
  }
}
