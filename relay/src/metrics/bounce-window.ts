// Rolling bounce rate per sending domain: counts in fixed time buckets, the oldest dropped as time
// moves on. Pure apart from the caller-supplied clock values.

interface Bucket {
  start: number;
  delivered: number;
  bounced: number;
}

export class BounceWindow {
  private readonly bucketMs: number;
  private readonly buckets: number;
  /** Buckets per domain, oldest first. */
  private readonly byDomain = new Map<string, Bucket[]>();

  constructor(windowMs: number, buckets: number) {
    this.bucketMs = Math.ceil(windowMs / buckets);
    this.buckets = buckets;
  }

  record(domain: string, outcome: 'delivered' | 'bounced', now: number): void {
    const list = this.prune(domain, now);
    const start = now - (now % this.bucketMs);
    let last = list[list.length - 1];
    if (!last || last.start !== start) {
      last = { start, delivered: 0, bounced: 0 };
      list.push(last);
    }
    last[outcome]++;
  }

  /** bounced / (delivered + bounced) in the window; 0 when nothing was sent. */
  rate(domain: string, now: number): number {
    let delivered = 0;
    let bounced = 0;
    for (const b of this.prune(domain, now)) {
      delivered += b.delivered;
      bounced += b.bounced;
    }
    return delivered + bounced === 0 ? 0 : bounced / (delivered + bounced);
  }

  private prune(domain: string, now: number): Bucket[] {
    let list = this.byDomain.get(domain);
    if (!list) {
      list = [];
      this.byDomain.set(domain, list);
    }
    const oldest = now - this.bucketMs * this.buckets;
    while (list.length > 0 && list[0]!.start < oldest) list.shift();
    return list;
  }
}
