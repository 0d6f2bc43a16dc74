// Conditions in the metav1.Condition shape: the one place that decides when lastTransitionTime
// moves (only when status changes, so an unchanged condition never causes a status write).
import type { Condition } from './types.ts';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A condition as the decision functions produce it; the time is filled in by mergeConditions. */
export type ConditionInput = {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
};

/** A condition as a decision states it: `cond('Ready', 'False', 'PoolNotFound', '...')`. */
export function cond(type: string, status: ConditionStatus, reason: string, message: string): ConditionInput {
  return { type, status, reason, message };
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * The new condition list: each input keeps the old lastTransitionTime when its status did not
 * change. The inputs are the whole truth of this pass: a condition type no longer decided (a
 * `DKIMKeyReady` of a domain whose pool is gone, a `TLSReady` after TLS was turned off) is dropped,
 * not kept forever with what it said last.
 */
export function mergeConditions(
  previous: Condition[] | undefined,
  inputs: ConditionInput[],
  generation: number | undefined,
  now: string,
): Condition[] {
  const merged: Condition[] = [];
  for (const input of inputs) {
    const old = findCondition(previous, input.type);
    const condition: Condition = {
      type: input.type,
      status: input.status,
      reason: input.reason,
      message: input.message,
      lastTransitionTime: old && old.status === input.status ? old.lastTransitionTime : now,
    };
    if (generation !== undefined) condition.observedGeneration = generation;
    merged.push(condition);
  }
  return merged;
}

/** The transitions worth an Event: a condition whose status or reason changed. */
export function conditionTransitions(
  previous: Condition[] | undefined,
  next: Condition[],
): { condition: Condition; from: string | undefined }[] {
  const changes: { condition: Condition; from: string | undefined }[] = [];
  for (const condition of next) {
    const old = findCondition(previous, condition.type);
    if (!old || old.status !== condition.status || old.reason !== condition.reason) {
      changes.push({ condition, from: old?.status });
    }
  }
  return changes;
}
