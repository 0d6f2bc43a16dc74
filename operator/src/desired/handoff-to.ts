// Pool deletion with a successor (spec.deletionHandOffTo): while a pool deleted with Drain names
// another pool of its namespace, its relays hand their whole queue to that pool's relays (relay
// config handoff.evacuateTo) instead of delivering it themselves. One decision, evacuatesInto(),
// serves both sides: the deleting pool's config and egress, and the target's ingress on its handoff
// port, which admits the deleting pool's relays only while that decision holds.
//
// The target's handoff Secret is mounted (optional) from when the field is set, not from the
// deletion: a new volume source changes the pod template and would roll the relays, so setting or
// changing the field rolls them once (a rollout hands queues to peers), and at deletion only the
// relay config changes, which the relays reload.
//
// A target that is being deleted itself receives nothing: two pools naming each other would
// otherwise pass their queues back and forth. The relays then deliver themselves, as they do while
// the target does not exist or has no ready relay (the relay retries the target every few seconds).
import type { V1VolumeProjection } from '@kubernetes/client-node';
import type { EvacuationTarget } from '../../../contract/config.ts';
import type { RelayPool } from '../api/types.ts';
import { EVACUATION_SECRET_FILE, HANDOFF_SECRET_KEY, names } from './meta.ts';

/** The pool a deleting pool hands its queue to, as the reconcile found it. */
export type HandOffTarget = {
  /** The RelayPool named by spec.deletionHandOffTo; absent: not found. */
  pool?: RelayPool;
  /** Its relay pods that are Ready and not being deleted. */
  readyRelays: number;
};

const drains = (pool: RelayPool) => (pool.spec?.deletionPolicy ?? 'Drain') === 'Drain';

/** The pool `pool` names to receive its queue when deleted; undefined: none (or itself). */
function handOffTargetName(pool: RelayPool): string | undefined {
  const name = pool.spec?.deletionHandOffTo;
  return name && name !== pool.metadata.name && drains(pool) ? name : undefined;
}

/** Whether `source`'s relays hand their queue to `target` now. */
export function evacuatesInto(source: RelayPool, target: RelayPool | undefined): boolean {
  return (
    source.metadata.deletionTimestamp !== undefined &&
    target !== undefined &&
    handOffTargetName(source) === target.metadata.name &&
    (source.metadata.namespace ?? '') === (target.metadata.namespace ?? '') &&
    !target.metadata.deletionTimestamp
  );
}

/** The relay config's handoff.evacuateTo for `pool`, while it evacuates into `target`. */
export function evacuationTarget(
  pool: RelayPool,
  target: RelayPool | undefined,
): EvacuationTarget | undefined {
  if (!target || !evacuatesInto(pool, target)) return undefined;
  return {
    // The target's headless Service lists its relays; the relay dials them on the handoff port.
    service: `${names.headless(target.metadata.name ?? '')}.${target.metadata.namespace ?? ''}.svc`,
    peers: [],
    secretFile: EVACUATION_SECRET_FILE,
  };
}

/**
 * The target's handoff Secret in the relays' config volume, from when the field is set. Optional:
 * a pool may name one that does not exist yet; the relay delivers itself until the file appears.
 */
export function evacuationSecretSource(pool: RelayPool): V1VolumeProjection | undefined {
  const target = handOffTargetName(pool);
  if (!target) return undefined;
  return {
    secret: {
      name: names.handoffSecret(target),
      optional: true,
      items: [{ key: HANDOFF_SECRET_KEY, path: EVACUATION_SECRET_FILE }],
    },
  };
}

/**
 * Why the relays of a pool being deleted cannot hand their queue to the pool it names (they deliver
 * themselves meanwhile); undefined when they can, or when it names none.
 */
export function handOffProblem(pool: RelayPool, target: HandOffTarget | undefined): string | undefined {
  const name = pool.spec?.deletionHandOffTo;
  if (!name || !drains(pool)) return undefined;
  if (name === pool.metadata.name) return `deletionHandOffTo names this pool itself`;
  if (!target?.pool) return `pool ${name} does not exist in namespace ${pool.metadata.namespace ?? ''}`;
  if (target.pool.metadata.deletionTimestamp) return `pool ${name} is being deleted itself`;
  if (target.readyRelays === 0) return `pool ${name} has no ready relay`;
  return undefined;
}

/** Names of the pools whose relays hand their queue to `target` now (its handoff port admits them). */
export function evacuatingInto(target: RelayPool, pools: readonly RelayPool[]): string[] {
  return pools
    .filter((p) => evacuatesInto(p, target))
    .map((p) => p.metadata.name ?? '')
    .sort();
}
