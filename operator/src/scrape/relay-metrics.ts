// What the autopilot reads from a relay's /metrics (and the status rates from a tracker's), and the
// increase of its counters over a window. Pure: samples in, numbers out (the scraper owns the clock
// and the HTTP).
import type { BounceMeasurement } from '../desired/bounce.ts';

const DELIVERED = 'mailfleet_relay_recipients_delivered_total';
const BOUNCED = 'mailfleet_relay_recipients_bounced_total';
/** Reports at the return-path listener (relay feedback/recorder.ts): async bounces, complaints. */
const FEEDBACK = 'mailfleet_relay_feedback_reports_total';
/** Human reads at the pool's tracker (relay tracker/server.ts); machine ones are not counted. */
const OPENS = 'mailfleet_tracker_opens_total';
/** The first open of each message (per tracker pod, relay tracker/unique.ts): the open rate's numerator. */
const UNIQUE_OPENS = 'mailfleet_tracker_unique_opens_total';
const CLICKS = 'mailfleet_tracker_clicks_total';
/** The relay's process start, or the tracker's: the same series under each program's prefix. */
const STARTS = new Set([
  'mailfleet_relay_process_start_time_seconds',
  'mailfleet_tracker_process_start_time_seconds',
]);
/** Queued delivery jobs by state (no series at all when the queue is empty). */
const QUEUE_JOBS = 'mailfleet_relay_queue_jobs';
/** Always exported (0 when empty): its presence says the page has the relay's queue gauges. */
const OLDEST = 'mailfleet_relay_queue_oldest_message_age_seconds';
/** The events webhook's backlog (events/sink.ts) at a relay or a tracker, present only with spec.events. */
const EVENTS_OLDEST = new Set([
  'mailfleet_relay_events_oldest_age_seconds',
  'mailfleet_tracker_events_oldest_age_seconds',
]);
/** Events in the webhook's outbox not yet acknowledged (events/sink.ts), present only with spec.events. */
const EVENTS_UNSENT = new Set([
  'mailfleet_relay_events_outbox_events',
  'mailfleet_tracker_events_outbox_events',
]);
/** 1 while the relay's shared state store answers; exported only with spec.sharedState. */
const SHARED_STATE_UP = 'mailfleet_relay_shared_state_up';
/** 0 once the relay's intake is closed and nothing received before is still being spooled. */
const INTAKE_OPEN = 'mailfleet_relay_intake_open';

/**
 * Final recipient outcomes, plus what came back later through the return path: hard bounces
 * after delivery (`asyncBounced`) and feedback-loop complaints. Those two are present only when
 * the relay reported some (a pool without a return path never does).
 */
export type Outcomes = {
  delivered: number;
  bounced: number;
  asyncBounced?: number;
  complaints?: number;
  /**
   * Messages opened (first open of each, unique.ts), every open pixel fetched, and tracked links
   * followed, by human readers (a tracker pod's page).
   */
  opens?: number;
  totalOpens?: number;
  clicks?: number;
};
const KEYS = ['delivered', 'bounced', 'asyncBounced', 'complaints', 'opens', 'totalOpens', 'clicks'] as const;
/** The tracker's counters of human reads and the Outcomes field each adds to. */
const READS: Record<string, (typeof KEYS)[number]> = {
  [UNIQUE_OPENS]: 'opens',
  [OPENS]: 'totalOpens',
  [CLICKS]: 'clicks',
};

/**
 * One scrape of one relay (or tracker): final recipient outcomes, or human opens and clicks, per
 * sending domain (the label value).
 */
export type RelaySample = {
  /** Scrape time, ms since the epoch. */
  at: number;
  /** Process start, ms since the epoch: a different value means the counters restarted at 0. */
  start?: number;
  outcomes: Map<string, Outcomes>;
  /**
   * Delivery jobs queued (every state); absent when the page lacks the queue gauges. A message whose
   * jobs are all gone but whose age is still reported counts as one: not empty yet.
   */
  queued?: number;
  /** Age of the oldest unacknowledged event of the relay's or tracker's events webhook; absent without spec.events. */
  eventsOldest?: number;
  /** Events in its outbox the receiver has not acknowledged; absent without spec.events. */
  eventsUnsent?: number;
  /**
   * Whether the operator's cache held a pod of the pool's tracker when this scrape's round began
   * (set by the scraper, not read from the page): a stopping tracker hands its events to a relay.
   */
  trackerPods?: boolean;
  /** Whether the relay reaches the pool's shared state store; absent: it has none configured. */
  sharedStateUp?: boolean;
  /** Whether the relay may still acknowledge new mail; absent: a relay without the gauge. */
  intakeOpen?: boolean;
};

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

/** Which Outcomes field a series adds to, if any. */
function fieldOf(name: string, labels: string): (typeof KEYS)[number] | undefined {
  if (name === DELIVERED) return 'delivered';
  if (name === BOUNCED) return 'bounced';
  // Machine reads (image proxies, link scanners) say nothing about readers: docs/tracking.md.
  const read = READS[name];
  if (read) return /(?:^|,)reader="human"/.test(labels) ? read : undefined;
  if (name !== FEEDBACK) return undefined;
  const kind = /(?:^|,)kind="([^"]*)"/.exec(labels)?.[1];
  return kind === 'hard-bounce' ? 'asyncBounced' : kind === 'complaint' ? 'complaints' : undefined;
}

/** Parses the text exposition format for the few series the autopilot needs. */
export function parseRelayMetrics(text: string, at: number): RelaySample {
  const sample: RelaySample = { at, outcomes: new Map() };
  let jobs = 0;
  let oldest: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const [, name = '', labels = '', value] = m;
    if (STARTS.has(name)) {
      sample.start = Number(value) * 1000;
      continue;
    }
    if (name === QUEUE_JOBS) {
      jobs += Number(value);
      continue;
    }
    if (name === OLDEST) {
      oldest = Number(value);
      continue;
    }
    if (EVENTS_OLDEST.has(name)) {
      sample.eventsOldest = Number(value);
      continue;
    }
    if (EVENTS_UNSENT.has(name)) {
      sample.eventsUnsent = Number(value);
      continue;
    }
    if (name === SHARED_STATE_UP) {
      sample.sharedStateUp = Number(value) === 1;
      continue;
    }
    if (name === INTAKE_OPEN) {
      sample.intakeOpen = Number(value) !== 0;
      continue;
    }
    const field = fieldOf(name, labels);
    if (!field) continue;
    const domain = /(?:^|,)sending_domain="([^"]*)"/.exec(labels)?.[1];
    if (domain === undefined) continue;
    const entry = sample.outcomes.get(domain) ?? { delivered: 0, bounced: 0 };
    entry[field] = (entry[field] ?? 0) + Number(value);
    sample.outcomes.set(domain, entry);
  }
  if (oldest !== undefined && Number.isFinite(jobs) && Number.isFinite(oldest))
    sample.queued = jobs > 0 ? jobs : oldest > 0 ? 1 : 0;
  return sample;
}

/** When the current run of samples that `holds` began (that scrape's time); undefined: the last does not. */
function runSince(samples: readonly RelaySample[], holds: (s: RelaySample) => boolean): number | undefined {
  let since: number | undefined;
  for (let i = samples.length - 1; i >= 0 && holds(samples[i]!); i--) since = samples[i]?.at;
  return since;
}

/**
 * When the relay's current run of closed-intake readings began (that scrape's time): undefined
 * when its last reading was open or had no intake gauge. A reading open in between starts over.
 */
export function intakeClosedSince(samples: readonly RelaySample[]): number | undefined {
  return runSince(samples, (s) => s.intakeOpen === false);
}

/**
 * When the relay's current run of quiet readings began: intake closed, queue empty and no tracker
 * pod of the pool left. After that nothing adds to its events outbox (an event is fsynced before
 * its job leaves the queue; a tracker hands its events over before its pod is gone), so a later
 * reading of the outbox is final (a pool deleted with Drain waits for it, desired/deletion.ts).
 */
export function quietSince(samples: readonly RelaySample[]): number | undefined {
  return runSince(samples, (s) => s.intakeOpen === false && s.queued === 0 && s.trackerPods === false);
}

const ZERO: Outcomes = { delivered: 0, bounced: 0 };

/**
 * How much one relay's counters for `domain` grew since `windowStart`. The baseline is the last
 * sample at or before the window start (so the figure may include up to one scrape interval more
 * than the window). Counters of a process that started inside the window count from zero; a
 * restart that began before the window and was never seen earlier adds nothing (unknown origin).
 */
export function increase(samples: RelaySample[], domain: string, windowStart: number): Outcomes {
  let baseline = -1;
  for (let i = 0; i < samples.length; i++) if ((samples[i]?.at ?? Infinity) <= windowStart) baseline = i;
  const total: Outcomes = { delivered: 0, bounced: 0 };
  const add = (key: (typeof KEYS)[number], n: number) => {
    if (n !== 0 || key === 'delivered' || key === 'bounced') total[key] = (total[key] ?? 0) + n;
  };
  let previous = baseline >= 0 ? samples[baseline] : undefined;
  for (const sample of samples.slice(baseline + 1)) {
    const now = sample.outcomes.get(domain) ?? ZERO;
    const before = previous?.outcomes.get(domain) ?? ZERO;
    const sameProcess =
      previous !== undefined &&
      previous.start === sample.start &&
      KEYS.every((k) => (now[k] ?? 0) >= (before[k] ?? 0));
    if (sameProcess) {
      for (const k of KEYS) add(k, (now[k] ?? 0) - (before[k] ?? 0));
    } else if (sample.start !== undefined && sample.start >= windowStart) {
      for (const k of KEYS) add(k, now[k] ?? 0);
    }
    previous = sample;
  }
  return total;
}

/** A domain's counts across the pods of its pool; undefined when no pod was ever scraped. */
export function poolOutcomes(
  relays: RelaySample[][],
  domain: string,
  windowStart: number,
): Outcomes | undefined {
  const scraped = relays.filter((samples) => samples.length > 0);
  if (scraped.length === 0) return undefined;
  const sum: Outcomes = { delivered: 0, bounced: 0 };
  for (const samples of scraped) {
    const grown = increase(samples, domain, windowStart);
    for (const k of KEYS) if (grown[k] !== undefined) sum[k] = (sum[k] ?? 0) + grown[k];
  }
  return sum;
}

/** A domain's measurement across the relays of its pool; undefined when no relay was ever scraped. */
export function poolMeasurement(
  relays: RelaySample[][],
  domain: string,
  windowStart: number,
): BounceMeasurement | undefined {
  const sum = poolOutcomes(relays, domain, windowStart);
  if (!sum) return undefined;
  const m: BounceMeasurement = { bounced: sum.bounced, total: sum.bounced + sum.delivered };
  if (sum.asyncBounced) m.asyncBounced = sum.asyncBounced;
  if (sum.complaints) m.complaints = sum.complaints;
  return m;
}
