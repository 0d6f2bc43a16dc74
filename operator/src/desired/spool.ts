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

/**
 * Spool bytes a relay is assumed to recover a second after a crash, for its startup window: about a
 * third of the slowest rate measured (bench/spool-recovery/RESULTS.md: 100,000 queued messages of
 * 10 KB, 1.7 GiB of spool, recovered at 22 MiB/s in 79.5 s on 2 busy cores).
 */
const RECOVERY_BYTES_PER_SECOND = 8 * 2 ** 20;
/** The least startup window: 15 minutes, ten times the slowest recovery measured. */
const MIN_STARTUP_SECONDS = 900;

/**
 * Seconds the relay's startupProbe allows before liveness counts: the time to recover the fullest
 * spool the pool can have (its emptyDir quota or its volume size), never under 15 minutes.
 */
export function startupWindowSeconds(pool: DefaultedRelayPool): number {
  const persistence = pool.spec.queue?.persistence;
  const spoolBytes = persistence ? quantityBytes(persistence.size) : spoolQuota(pool)?.maxBytes;
  return Math.max(MIN_STARTUP_SECONDS, Math.ceil((spoolBytes ?? 0) / RECOVERY_BYTES_PER_SECOND));
}
