// The quota of an emptyDir spool. The kubelet evicts a pod whose emptyDir outgrows its sizeLimit,
// and the spool goes with the emptyDir, so the relay must stop taking mail before that: it gets the
// limit as spool.maxBytes and keeps minFreeBytes of it in reserve. The limit defaults to the
// relay's ephemeral-storage request, so what the scheduler reserves is what the spool may fill.
import type { DefaultedRelayPool } from '../api/types.ts';
import { DEFAULTS } from '../../../contract/defaults.ts';
import { quantityBytes } from './meta.ts';

/** The relay's own default reserve (spool.minFreeBytes), the most a quota keeps back. */
const MAX_SPOOL_RESERVE_BYTES = DEFAULTS.spool.minFreeBytes;

export type SpoolQuota = {
  /** The emptyDir's sizeLimit, as the pool wrote it. */
  sizeLimit: string;
  /** The same in bytes: the relay's spool.maxBytes. */
  maxBytes: number;
  /** spool.minFreeBytes: a tenth of the quota, at most the relay's default 100 MiB. */
  minFreeBytes: number;
};

/** Undefined for a persistent spool (a PVC is its own filesystem) or when no size is known. */
export function spoolQuota(pool: DefaultedRelayPool): SpoolQuota | undefined {
  const spec = pool.spec;
  if (spec.queue?.persistence) return undefined;
  const limit = spec.queue?.sizeLimit ?? spec.resources?.requests?.['ephemeral-storage'];
  const maxBytes = quantityBytes(limit);
  if (limit === undefined || maxBytes === undefined || maxBytes <= 0) return undefined;
  return {
    sizeLimit: String(limit),
    maxBytes,
    minFreeBytes: Math.min(MAX_SPOOL_RESERVE_BYTES, Math.floor(maxBytes / 10)),
  };
}
