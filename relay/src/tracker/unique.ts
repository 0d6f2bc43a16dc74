// Unique opens: the first fetch of a message's open pixel by each reader class (human or machine)
// counts once, later fetches only in the total. A token names the message, not the recipient (the
// relay rewrites a message once for all its recipients, before DKIM signing), so "unique" is per
// message. Per tracker pod and bounded: the most recently opened `max` messages are remembered; a
// message opened again after that many others, or at another tracker pod, counts again.

/** Messages remembered per tracker pod: ~100 bytes each, about 10 MB at the default. */
const UNIQUE_OPENS_REMEMBERED = 100_000;

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
