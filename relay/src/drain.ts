// Graceful stop (SIGTERM or POST /drain): refuse new sessions with 421, let open ones finish,
// then hand the queue to ready peers of the pool (handoff/; an evacuating relay: to the relays of
// the pool it evacuates to) or, with no peer, deliver what can be delivered, all within
// drainTimeout; then the events outbox's unsent events go to a peer the same way. What is left
// stays in the spool for the next start.
import { durationMs } from './config/duration.ts';
import type { RuntimeConfig } from './config/runtime.ts';
import type { Logger } from '../../contract/log.ts';
import type { Scheduler } from './scheduler/scheduler.ts';
import type { Intake } from './smtp/server.ts';
import {
  handOffQueue,
  queueSender,
  type HandoffSenderDeps,
  type HandoffSummary,
  type QueueHolder,
} from './handoff/sender.ts';
import { evacuationTarget } from './handoff/evacuate-to.ts';
import { eventsDeadline, handOffEvents, type EventsBacklog } from './handoff/events.ts';

/** What a drain needs of the relay, and nothing more: relay.ts builds it from its parts, so the
 * two files do not import each other and a drain cannot reach anything it should not touch. */
export interface Drainable extends QueueHolder {
  /** The config in force when the drain starts (drainTimeout, handoff) and the handoff secrets. */
  readonly runtime: Pick<RuntimeConfig, 'config' | 'handoffSecret' | 'evacuation'>;
  /** From now on new sessions get 421, /readyz fails and peers stop handing mail to this relay. */
  startDraining(): void;
  /** Resolves once nothing else moves the queue (an evacuation pass in progress has ended). */
  quiesce(): Promise<void>;
  readonly log: Logger;
  readonly scheduler: Pick<Scheduler, 'messages' | 'retryAll' | 'pause' | 'resume' | 'idle'>;
  readonly intake: Pick<Intake, 'sessions' | 'close'>;
  /** Stops the events webhook's sender; resolves with the outbox to hand off (undefined: no events). */
  stopEvents(): Promise<EventsBacklog | undefined>;
  /** Counts events a peer acknowledged. */
  eventsHandedOff(count: number): void;
}

/** With no ready peer, the pool is looked up again this often while delivery goes on. */
const PEER_RETRY_MS = 3000;

export async function drain(relay: Drainable): Promise<void> {
  const config = relay.runtime.config;
  const started = Date.now();
  const deadline = started + durationMs(config.drainTimeout);
  relay.startDraining();
  await relay.quiesce();
  relay.log('info', 'drain started', {
    queued: relay.scheduler.messages.size,
    handoff: config.handoff ? { service: config.handoff.service ?? null, peers: config.handoff.peers } : null,
    evacuateTo: config.handoff?.evacuateTo?.service ?? config.handoff?.evacuateTo?.peers ?? null,
  });
  const handoff = handoffDeps(relay);
  const total: HandoffSummary = { peers: 0, sent: 0, duplicates: 0, left: 0 };

  // Listeners stay open until the end so new sessions get a 421 (and go to another relay)
  // rather than a refused connection; sessions already in a transaction finish it.
  if (handoff) {
    await handOffUntilEmpty(relay, handoff, deadline, total);
  } else {
    relay.scheduler.retryAll();
    await waitUntil(() => relay.scheduler.messages.size === 0, deadline);
  }
  relay.scheduler.pause();
  await Promise.race([relay.scheduler.idle(), sleep(Math.max(1000, deadline - Date.now()))]);
  await waitUntil(() => relay.intake.sessions.total === 0, Math.max(deadline, Date.now() + 1000));
  await relay.intake.close(1000);
  // Mail accepted by sessions that were already in a transaction when the drain started.
  if (handoff && relay.scheduler.messages.size > 0 && Date.now() < deadline)
    add(total, await handOffQueue(handoff, deadline));
  const events = handoff ? await handOffOutbox(relay, handoff, deadline) : undefined;
  relay.log('info', 'drain finished', {
    remaining: relay.scheduler.messages.size,
    handedOff: total.sent,
    duplicates: total.duplicates,
    ...(events ? { eventsHandedOff: events.sent, eventsLeft: events.left } : {}),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  });
}

/**
 * The events the receiver has not acknowledged go where the queue went (they would be lost with
 * an emptyDir): the webhook sender stops first, so nothing else reads or acknowledges the outbox.
 */
async function handOffOutbox(relay: Drainable, handoff: HandoffSenderDeps, deadline: number) {
  const outbox = await relay.stopEvents();
  if (!outbox || outbox.unsent === 0) return undefined;
  const summary = await handOffEvents(
    {
      instance: handoff.instance,
      secret: handoff.secret,
      target: handoff.target,
      log: relay.log,
      now: Date.now,
      sent: (n) => relay.eventsHandedOff(n),
    },
    outbox,
    eventsDeadline(deadline, Date.now()),
  );
  relay.log(summary.left === 0 ? 'info' : 'warn', 'events handoff', { ...summary });
  return summary;
}

/**
 * Hands off with delivery paused (no attempt in flight races a transfer); when no peer takes the
 * rest, delivery resumes and the pool is asked again every PEER_RETRY_MS until the queue is empty.
 */
async function handOffUntilEmpty(
  relay: Drainable,
  handoff: HandoffSenderDeps,
  deadline: number,
  total: HandoffSummary,
): Promise<void> {
  let retried = false;
  while (Date.now() < deadline && relay.scheduler.messages.size > 0) {
    relay.scheduler.pause();
    await Promise.race([relay.scheduler.idle(), sleep(Math.max(0, deadline - Date.now()))]);
    const summary = await handOffQueue(handoff, deadline);
    add(total, summary);
    relay.log('info', 'handoff pass', { ...summary });
    if (summary.left === 0) break;
    relay.scheduler.resume();
    if (!retried) relay.scheduler.retryAll();
    retried = true;
    await waitUntil(
      () => relay.scheduler.messages.size === 0,
      Math.min(deadline, Date.now() + PEER_RETRY_MS),
    );
  }
}

/** An evacuating relay drains to the pool it evacuates to (its own pool is going); else to its peers. */
function handoffDeps(relay: Drainable): HandoffSenderDeps | undefined {
  const evacuation = evacuationTarget(relay.runtime);
  if (evacuation) return queueSender(relay, evacuation.target, evacuation.secret);
  const { config, handoffSecret } = relay.runtime;
  if (!config.handoff || !handoffSecret) return undefined;
  const target: HandoffSenderDeps['target'] = {
    port: config.handoff.port,
    peers: config.handoff.peers,
    dnsServers: config.handoff.dnsServers,
  };
  if (config.handoff.service) target.service = config.handoff.service;
  return queueSender(relay, target, handoffSecret);
}

function add(total: HandoffSummary, pass: HandoffSummary): void {
  total.peers = Math.max(total.peers, pass.peers);
  total.sent += pass.sent;
  total.duplicates += pass.duplicates;
  total.left = pass.left;
}

async function waitUntil(done: () => boolean, deadline: number): Promise<void> {
  while (!done() && Date.now() < deadline) await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
