// Whether an observed object already is what we would apply. Pure.
import { createHash } from 'node:crypto';

export const APPLIED_HASH = 'mailfleet.dev/applied-hash';

function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, stable((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export function appliedHash(object: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(stable(object)))
    .digest('hex')
    .slice(0, 20);
}

const empty = (v: unknown) =>
  v === undefined ||
  v === null ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && Object.keys(v as object).length === 0);

/** Every field of `desired` has the same value in `observed` (server defaults may add more). */
export function isSubset(desired: unknown, observed: unknown): boolean {
  if (empty(desired)) return empty(observed) || typeof observed === typeof desired;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(observed) &&
      desired.length === observed.length &&
      desired.every((d, i) => isSubset(d, observed[i]))
    );
  }
  if (desired && typeof desired === 'object') {
    if (!observed || typeof observed !== 'object') return false;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) =>
      isSubset(v, (observed as Record<string, unknown>)[k]),
    );
  }
  if (String(desired) === String(observed)) return true;
  // The API server normalizes quantities ("0.5" CPU comes back as "500m", "1024Mi" as "1Gi"):
  // compared as text they would never match, and the object would be re-applied on every pass.
  const a = quantity(desired);
  const b = quantity(observed);
  return a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-9;
}

const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity as a number ("500m" -> 0.5, "1Gi" -> 1073741824); undefined if not one. */
export function quantity(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (SUFFIX[m[2] ?? ''] ?? 1);
}

/**
 * Apply is needed when the object drifted (a field we set differs) or when what we apply changed
 * (the hash annotation catches fields we stopped setting, which a subset check cannot see).
 */
export function needsApply(
  desired: { metadata?: { annotations?: Record<string, string> } },
  observed: unknown,
): boolean {
  if (!observed) return true;
  const hash = desired.metadata?.annotations?.[APPLIED_HASH];
  const observedHash = (observed as { metadata?: { annotations?: Record<string, string> } }).metadata
    ?.annotations?.[APPLIED_HASH];
  return hash !== observedHash || !isSubset(desired, observed);
}

/** The object with its applied-hash annotation (computed over everything else). */
export function withAppliedHash<T extends { metadata?: { annotations?: Record<string, string> } }>(
  object: T,
): T {
  const copy = structuredClone(object);
  copy.metadata = copy.metadata ?? {};
  copy.metadata.annotations = { ...copy.metadata.annotations, [APPLIED_HASH]: appliedHash(object) };
  return copy;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON merge patch (RFC 7396) that turns `before` into `after`: fields of `before` that `after`
 * lacks become null, so a status written as a whole loses its stale fields (a merge patch of
 * `after` alone would keep them). Lists are replaced whole, as merge patches do.
 */
export function mergePatch(before: unknown, after: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  const old = isObject(before) ? before : {};
  for (const key of Object.keys(old)) if (!(key in after) || after[key] === undefined) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    if (value === undefined) continue;
    patch[key] = isObject(value) && isObject(old[key]) ? mergePatch(old[key], value) : value;
  }
  return patch;
}
