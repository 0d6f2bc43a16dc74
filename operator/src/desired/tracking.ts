// The pool's tracking key, when any of its domains tracks opens or clicks: one Secret generated
// once and never rewritten (a new key would break every tracked link already delivered). Pure.
import type { RelayPool } from '../api/types.ts';
import { MIN_TRACKING_KEY_BYTES as MIN_KEY_BYTES } from '../../../contract/layout.ts';
import { TRACKING_KEY_KEY, names } from './meta.ts';
import { generatedKeyInputs } from './generated-key.ts';
import type { GeneratedKeyInputs } from './generated-key.ts';
import { trackingKeySecret } from './secret.ts';
import type { Generators, KubeObject, Observed } from './types.ts';

export type TrackingInputs = GeneratedKeyInputs;

export function trackingInputs(pool: RelayPool, observed: Observed, gen: Generators): TrackingInputs {
  return generatedKeyInputs(
    {
      name: names.trackingKey(pool.metadata.name ?? ''),
      key: TRACKING_KEY_KEY,
      minBytes: MIN_KEY_BYTES,
      purpose: 'tracking',
      make: () => trackingKeySecret(pool, gen.password()) as KubeObject,
    },
    observed,
  );
}
