// The intake switch (config `intake.open`): the operator closes it on the relays of a pool being
// deleted with deletionPolicy Drain, so that the pool's queue can empty and nothing is accepted
// after its last empty reading. Only the public listeners follow it: delivery, the handoff port
// (mail from draining peers is already accepted mail) and the return-path listener (bounces and
// complaints are recorded, never queued) keep working.
import { REPLIES, type PolicyResult } from '../errors.ts';

/** Where in a session the switch is looked at. */
export type IntakeStage = 'connect' | 'mail' | 'data';

/**
 * Closed: a new session and MAIL FROM get 421 (RFC 5321 §3.8: the session closes and the client
 * tries another relay or later); a message whose DATA ends after the switch gets 451, so it is
 * never acknowledged (RFC 5321 §4.2.5: without the 250 the client keeps the message).
 */
export function intakeSwitchPolicy(input: { open: boolean; stage: IntakeStage }): PolicyResult {
  if (input.open) return { ok: true };
  return input.stage === 'data' ? REPLIES.intakeClosedInData : REPLIES.intakeClosed;
}

/**
 * What `mailfleet_relay_intake_open` reports. 0 only once the switch is closed and no message that
 * ended DATA before it is still being spooled: from then on every message this relay will ever
 * acknowledge is in its queue gauges, so a later empty reading means an empty relay.
 */
export function intakeReportedOpen(input: { open: boolean; acceptsInFlight: number }): boolean {
  return input.open || input.acceptsInFlight > 0;
}

/** The log line a reload that flips the switch writes, if it does. */
export function intakeChange(before: boolean, after: boolean): 'intake closed' | 'intake opened' | undefined {
  if (before === after) return undefined;
  return after ? 'intake opened' : 'intake closed';
}

/** Messages between the end of their DATA and their reply (spool write and fsync, queueing). */
export class AcceptsInFlight {
  /** Accepts started and not settled yet. */
  count = 0;

  /** Counts `accepting` until it settles; call it in the same tick the accept starts. */
  track<T>(accepting: Promise<T>): Promise<T> {
    this.count++;
    return accepting.finally(() => this.count--);
  }
}
