// The bounce-rate autopilot's decision for one SendingDomain. Pure: the measurement comes from
// the relays' metrics (gathered elsewhere), the clock is an input.
import type { SendingDomain } from '../api/types.ts';
import { findCondition } from '../api/conditions.ts';
import { durationMs } from '../../../contract/duration.ts';

/**
 * Set together with spec.suspend: true in one patch when the autopilot suspends; its value is the
 * reason spelled out. One atomic write, so no later reconcile can see the suspension without
 * knowing it was automatic (a status written separately could lag behind the spec).
 */
export const AUTOSUSPEND_ANNOTATION = 'mailfleet.dev/autosuspended';

export type BounceMeasurement = { bounced: number; total: number };

export type SuspensionDecision = {
  suspended: boolean;
  reason:
    'SuspendedBySpec' | 'BounceRateExceeded' | 'BounceRateAcceptable' | 'NotEnoughMessages' | 'NoMeasurement';
  message: string;
  /** The rate to report in status.bounceRate, when measured. */
  rate?: number;
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
  domain: SendingDomain,
  measurement: BounceMeasurement | undefined,
  now: Date,
): SuspensionDecision {
  const policy = domain.spec.bouncePolicy ?? {};
  const maxRate = policy.maxBounceRate ?? 0.05;
  const minMessages = policy.minMessages ?? 100;
  const windowText = policy.window ?? '1h';
  const rate = measurement && measurement.total > 0 ? measurement.bounced / measurement.total : undefined;
  const autosuspension = domain.metadata.annotations?.[AUTOSUSPEND_ANNOTATION];
  const base = { rate, suspendNow: false, alert: false, resumed: false };
  if (domain.spec.suspend) {
    return {
      ...base,
      suspended: true,
      reason: autosuspension !== undefined ? 'BounceRateExceeded' : 'SuspendedBySpec',
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
  const measured = `bounce rate ${percent(rate)} (${measurement.bounced} of ${measurement.total} recipients in the last ${windowText})`;
  if (rate <= maxRate) {
    return {
      ...base,
      suspended: false,
      reason: 'BounceRateAcceptable',
      message: `${measured} is within ${percent(maxRate)}`,
    };
  }
  const exceeded = `${measured} exceeds maxBounceRate ${percent(maxRate)}`;
  if (policy.action !== 'Suspend')
    return { ...base, suspended: false, alert: true, reason: 'BounceRateExceeded', message: exceeded };
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
      reason: 'BounceRateExceeded',
      alert: true,
      message: `${exceeded}; resumed less than ${windowText} ago, not suspending again yet`,
    };
  }
  return {
    ...base,
    suspended: true,
    suspendNow: true,
    reason: 'BounceRateExceeded',
    message: `${exceeded}: suspended`,
  };
}
