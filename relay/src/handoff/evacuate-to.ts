// PoolEvacuation (config handoff.evacuateTo): the relays of a pool deleted with a successor pool hand
// their whole queue to the successor's relays, and go on doing so for whatever joins the queue
// later (mail still accepted, DSNs, a drained peer's queue). The transfer is the drain's (sender.ts), signed with the successor's secret: a message leaves this
// relay only after a target relay fsynced it, and a kill at any moment leaves at most a copy on
// both sides (the receiver recognises it by id). While target relays take the mail this relay
// does not deliver itself; when none does (the target pool down, its secret not readable yet),
// delivery resumes here and the target is asked again every RETRY_MS: evacuating never holds
// mail back.
import type { Logger } from '../../../contract/log.ts';
import type { RuntimeConfig } from '../config/runtime.ts';
import type { Scheduler } from '../scheduler/scheduler.ts';
import { handOffQueue, queueSender, type HandoffTarget, type QueueHolder } from './sender.ts';

/** How often a relay with nothing to move looks at its queue again. */
const TICK_MS = 500;
/** With no target relay taking mail, delivery goes on here this long before the next attempt. */
const RETRY_MS = 3000;
/** Longest wait for delivery attempts in flight to end before a pass (attempts have timeouts). */
const IDLE_WAIT_MS = 30_000;
/** One pass ends after this; what is left is taken by the next one. */
const PASS_MS = 60_000;

export interface Evacuee extends QueueHolder {
  /** The config in force (read at every pass: the target follows reloads). */
  runtime(): Pick<RuntimeConfig, 'config' | 'evacuation'>;
  /** A drain moves the queue itself (to the same target): the evacuation gives way. */
  draining(): boolean;
  readonly scheduler: Pick<Scheduler, 'messages' | 'pause' | 'resume' | 'idle' | 'inflightCount'>;
  readonly log: Logger;
}

/** Where the queue goes and the secret it is signed with; undefined when not evacuating. */
export function evacuationTarget(
  runtime: Pick<RuntimeConfig, 'config' | 'evacuation'>,
): { target: HandoffTarget; secret: Buffer } | undefined {
  const handoff = runtime.config.handoff;
  const to = handoff?.evacuateTo;
  if (!handoff || !to || !runtime.evacuation || !('secret' in runtime.evacuation)) return undefined;
  const target: HandoffTarget = { port: handoff.port, peers: to.peers, dnsServers: handoff.dnsServers };
  if (to.service) target.service = to.service;
  return { target, secret: runtime.evacuation.secret };
}

export class PoolEvacuation {
  private readonly relay: Evacuee;
  /** The running loop; undefined when not evacuating. */
  private running: Promise<void> | undefined;
  /** Set by stop(): no loop starts or goes on after it. */
  private stopped = false;
  /** Ends the loop's current sleep early (stop, or a reload that changed the target). */
  private wake: (() => void) | undefined;

  constructor(relay: Evacuee) {
    this.relay = relay;
  }

  /** Called at start and after every reload: starts evacuating when the config says so. */
  follow(): void {
    const runtime = this.relay.runtime();
    const evacuation = runtime.evacuation;
    if (evacuation && 'problem' in evacuation)
      this.relay.log('error', 'evacuation target secret not usable; delivering here meanwhile', {
        problem: evacuation.problem,
      });
    if (!this.stopped && !this.running && evacuationTarget(runtime))
      this.running = this.loop().finally(() => (this.running = undefined));
    this.wake?.();
  }

  /** Ends the evacuation; resolves once a pass in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { scheduler, log } = this.relay;
    const moved = { sent: 0, duplicates: 0 };
    /** Whether the last pass found a target relay that took mail (logged on change only). */
    let reaching: boolean | undefined;
    log('info', 'evacuation started', { to: describe(this.relay.runtime()) });
    for (;;) {
      if (this.stopped || this.relay.draining()) break;
      const to = evacuationTarget(this.relay.runtime());
      if (!to) break;
      if (scheduler.messages.size === 0) {
        await this.sleep(TICK_MS);
        continue;
      }
      // No attempt may be in flight for a message handed off: it could be delivered twice.
      scheduler.pause();
      await Promise.race([scheduler.idle(), this.sleep(IDLE_WAIT_MS)]);
      if (scheduler.inflightCount > 0 || this.stopped || this.relay.draining()) continue;
      const pass = await handOffQueue(queueSender(this.relay, to.target, to.secret), Date.now() + PASS_MS);
      moved.sent += pass.sent;
      moved.duplicates += pass.duplicates;
      if (pass.sent > 0) log('info', 'evacuation pass', { ...pass });
      // Progress is what counts: mail that joined the queue during the pass goes in the next one.
      const reached = pass.left === 0 || pass.sent > 0;
      if (reached !== reaching)
        log(
          reached ? 'info' : 'warn',
          reached ? 'evacuating to the target pool' : 'no target relay takes mail; delivering here meanwhile',
          {
            peers: pass.peers,
            left: pass.left,
          },
        );
      reaching = reached;
      if (reached) await this.sleep(TICK_MS);
      else {
        scheduler.resume();
        await this.sleep(RETRY_MS);
      }
    }
    // A drain owns the scheduler from here; otherwise this relay delivers again.
    if (!this.relay.draining()) scheduler.resume();
    log('info', 'evacuation stopped', { handedOff: moved.sent, duplicates: moved.duplicates });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function describe(runtime: Pick<RuntimeConfig, 'config'>): string[] {
  const to = runtime.config.handoff?.evacuateTo;
  return to ? [...(to.service ? [to.service] : []), ...to.peers] : [];
}
