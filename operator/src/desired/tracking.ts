// The pool's tracking key, when any of its domains tracks opens or clicks: one Secret generated
// once and never rewritten (a new key would break every tracked link already delivered). Pure.
import type { ConditionInput } from '../api/conditions.ts';
import type { RelayPool } from '../api/types.ts';
import { MIN_TRACKING_KEY_BYTES as MIN_KEY_BYTES } from '../../../contract/layout.ts';
import { TRACKING_KEY_KEY, names } from './meta.ts';
import { secretText, trackingKeySecret } from './secret.ts';
import type { Generators, KubeObject, Observed } from './types.ts';

export type TrackingInputs = { problem?: ConditionInput; create: KubeObject[]; keep: string[] };

export function trackingInputs(pool: RelayPool, observed: Observed, gen: Generators): TrackingInputs {
  const name = names.trackingKey(pool.metadata.name ?? '');
  const existing = observed.secrets.get(name);
  if (!existing) return { create: [trackingKeySecret(pool, gen.password()) as KubeObject], keep: [] };
  if ((secretText(existing, TRACKING_KEY_KEY) ?? '').length < MIN_KEY_BYTES)
    return {
      create: [],
      keep: [],
      problem: {
        type: 'Ready',
        status: 'False',
        reason: 'SecretMalformed',
        message: `tracking Secret ${name} lost its ${TRACKING_KEY_KEY} key (at least ${MIN_KEY_BYTES} bytes)`,
      },
    };
  return { create: [], keep: [`Secret/${name}`] };
}
