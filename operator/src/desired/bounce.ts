// The bounce-rate autopilot's decision for one SendingDomain. Pure: the measurement comes from
// the relays' metrics (gathered elsewhere), the clock is an input.
import type { DefaultedSendingDomain } from '../api/types.ts';
import { findCondition } from '../api/conditions.ts';
import { durationMs } from '../../../contract/duration.ts';

/**
 * Set together with spec.suspend: true in one patch when the autopilot suspends; its value is the
 * reason spelled out. One atomic write, so no later reconcile can see the suspension without
 * knowing it was automatic (a status written separately could lag behind the spec).
 */
export const AUTOSUSPEND_ANNOTATION = 'mailfleet.dev/autosuspended';

/**
 * Recipients over the policy window across the pool: `total` reached a final outcome (delivered
 * or bounced in the session), `bounced` of them bounced in the session; `asyncBounced` were
 * delivered and came back later as hard bounces through the return path; `complaints` were
 * reported as spam through a feedback loop.
 */
export type BounceMeasurement = {
  bounced: number;
  total: number;
  asyncBounced?: number;
  complaints?: number;
};

export type SuspensionDecision = {
  suspended: boolean;
  reason:
    | 'SuspendedBySpec'
    | 'BounceRateExceeded'
    | 'ComplaintRateExceeded'
    | 'BounceRateAcceptable'
    | 'NotEnoughMessages'
    | 'NoMeasurement';
  message: string;
  /** The rate to report in status.bounceRate (sync and async bounces), when measured. */
  rate?: number;
  /** The rate to report in status.complaintRate, when measured. */
  complaintRate?: number;
  /** The operator should set spec.suspend: true (an automatic suspension starts now). */
  suspendNow: boolean;
  /** Over the limit with action Alert: report, do not suspend. */
  alert: boolean;
  /** spec.suspend was set back to false after an automatic suspension: drop the annotation. */
  resumed: boolean;
};

const percent = (rate: number) => `${(rate * 100).toFixed(2)}%`;

/**
 * An automatic suspension writes spec.suspend: true (and AUTOSUSPEND_ANNOTATION), so the user
 * resumes with spec.suspend: false. After a resume the old window still holds the bounces that
 * caused it, so the autopilot waits one window (the cool-down) before it may suspend again.
 */
export function decideSuspension(
  domain: DefaultedSendingDomain,
  measurement: BounceMeasurement | undefined,
  now: Date,
): SuspensionDecision {
  const policy = domain.spec.bouncePolicy;
  const maxRate = policy.maxBounceRate;
  const maxComplaintRate = policy.maxComplaintRate;
  const minMessages = policy.minMessages;
  const windowText = policy.window;
  const asyncBounced = measurement?.asyncBounced ?? 0;
  const complaints = measurement?.complaints ?? 0;
  const rate =
    measurement && measurement.total > 0
      ? Math.min(1, (measurement.bounced + asyncBounced) / measurement.total)
      : undefined;
  const complaintRate =
    measurement && measurement.total > 0 ? Math.min(1, complaints / measurement.total) : undefined;
  const autosuspension = domain.metadata.annotations?.[AUTOSUSPEND_ANNOTATION];
  const base = {
    rate,
    ...(complaintRate !== undefined ? { complaintRate } : {}),
    suspendNow: false,
    alert: false,
    resumed: false,
  };
  if (domain.spec.suspend) {
    return {
      ...base,
      suspended: true,
      reason:
        autosuspension === undefined
          ? 'SuspendedBySpec'
          : autosuspension.includes('complaint rate')
            ? 'ComplaintRateExceeded'
            : 'BounceRateExceeded',
      message: autosuspension || 'spec.suspend is true: mail stays queued until it is set to false',
    };
  }
  // spec.suspend is false but the annotation is still there: the user has just resumed.
  if (autosuspension !== undefined) base.resumed = true;
  if (!measurement)
    return { ...base, suspended: false, reason: 'NoMeasurement', message: 'no bounce measurement yet' };
  if (measurement.total < minMessages || rate === undefined) {
    return {
      ...base,
      suspended: false,
      reason: 'NotEnoughMessages',
      message: `${measurement.total} recipients in the last ${windowText}, fewer than minMessages ${minMessages}`,
    };
  }
  const of = (n: number) => `${n} of ${measurement.total} recipients in the last ${windowText}`;
  const bounceText = `bounce rate ${percent(rate)} (${of(measurement.bounced + asyncBounced)}${asyncBounced ? `, ${asyncBounced} of them bounced after delivery` : ''})`;
  const complaintText = `complaint rate ${percent(complaintRate ?? 0)} (${of(complaints)})`;
  // The complaint rate is judged first: it is what mailbox providers block senders on.
  const tripped =
    (complaintRate ?? 0) > maxComplaintRate
      ? {
          reason: 'ComplaintRateExceeded' as const,
          text: `${complaintText} exceeds maxComplaintRate ${percent(maxComplaintRate)}`,
        }
      : rate > maxRate
        ? {
            reason: 'BounceRateExceeded' as const,
            text: `${bounceText} exceeds maxBounceRate ${percent(maxRate)}`,
          }
        : undefined;
  if (!tripped) {
    return {
      ...base,
      suspended: false,
      reason: 'BounceRateAcceptable',
      message: `${bounceText} is within ${percent(maxRate)}; ${complaintText} is within ${percent(maxComplaintRate)}`,
    };
  }
  const exceeded = tripped.text;
  if (policy.action !== 'Suspend')
    return { ...base, suspended: false, alert: true, reason: tripped.reason, message: exceeded };
  const resumed = findCondition(domain.status?.conditions, 'Suspended');
  const suspendedAt = Date.parse(domain.status?.suspendedAt ?? '');
  // The pass that sees spec.suspend back to false (annotation still set, or Suspended still True) is
  // the resume; the condition turning False now is what later passes measure the cool-down from.
  const resumedAt =
    base.resumed || resumed?.status === 'True'
      ? now.getTime()
      : resumed?.status === 'False'
        ? Date.parse(resumed.lastTransitionTime)
        : NaN;
  const resumedAfterSuspension = resumedAt >= suspendedAt;
  if (resumedAfterSuspension && now.getTime() - resumedAt < durationMs(windowText)) {
    return {
      ...base,
      suspended: false,
      reason: tripped.reason,
      alert: true,
      message: `${exceeded}; resumed less than ${windowText} ago, not suspending again yet`,
    };
  }
  return {
    ...base,
    suspended: true,
    suspendNow: true,
    reason: tripped.reason,
    message: `${exceeded}: suspended`,
  };
}
