// The queue as the metrics see it at a scrape: jobs by state and sending domain, the oldest
// message, spool bytes and traffic shaping. Pure: relay.ts passes what it reads.
import type { QueuedMessage } from '../scheduler/model.ts';
import type { LimitDestinationState } from '../shaping/shaper.ts';
import type { QueueSnapshot } from './metrics.ts';

export interface SnapshotInput {
  messages: Iterable<QueuedMessage>;
  /** Configured sending domains: each gets a zero series per state even when it has no jobs. */
  sendingDomains: string[];
  domainLabel(domain: string): string;
  spoolBytes: number;
  shaping: { destinations: LimitDestinationState[]; rateLimited: number; backedOff: number };
}

const JOB_STATES = ['ready', 'deferred', 'inflight'] as const;

export function queueSnapshot(input: SnapshotInput): QueueSnapshot {
  const jobsByState = new Map<string, number>();
  let oldest: number | undefined;
  for (const m of input.messages) {
    oldest = Math.min(oldest ?? Infinity, m.envelope.receivedAt);
    const domain = input.domainLabel(m.senderDomain);
    for (const j of m.jobs.values()) {
      const key = `${j.state}\0${domain}`;
      jobsByState.set(key, (jobsByState.get(key) ?? 0) + 1);
    }
  }
  for (const state of JOB_STATES) {
    for (const d of [...input.sendingDomains, 'other']) {
      const key = `${state}\0${d}`;
      if (!jobsByState.has(key)) jobsByState.set(key, 0);
    }
  }
  return { jobsByState, oldestReceivedAt: oldest, spoolBytes: input.spoolBytes, shaping: input.shaping };
}
