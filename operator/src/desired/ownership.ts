// Which objects a pool may write and prune, and when its StatefulSet must be recreated. Pure.
import type { KubeObject } from './types.ts';

type Owned = { metadata?: { ownerReferences?: { controller?: boolean; uid?: string }[] } };

/** The object's controller ownerReference is the object with this UID. */
export function controlledBy(object: Owned | undefined, uid: string | undefined): boolean {
  if (!object || !uid) return false;
  return (object.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === uid);
}

const claims = (sts: KubeObject | undefined) =>
  (((sts?.spec ?? {}) as { volumeClaimTemplates?: unknown[] }).volumeClaimTemplates ?? []).map((c) => {
    const claim = c as {
      metadata?: { name?: string };
      spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
    };
    return {
      name: claim.metadata?.name ?? '',
      storageClassName: claim.spec?.storageClassName,
      storage: claim.spec?.resources?.requests?.storage,
    };
  });

/**
 * A StatefulSet's volumeClaimTemplates cannot be changed in place (the API server refuses the
 * update, and every later apply of the pool would fail). When the desired templates differ from
 * the existing ones in name, size or storage class, the StatefulSet is deleted with its pods
 * orphaned (they keep serving and keep their claims) and created again, and adopts them.
 * A storage class the user left out is the cluster's default, which the server fills in: only a
 * class we set counts.
 */
export function mustRecreateStatefulSet(desired: KubeObject, existing: KubeObject | undefined): boolean {
  if (!existing || desired.kind !== 'StatefulSet' || existing.kind !== 'StatefulSet') return false;
  const want = claims(desired);
  const have = claims(existing);
  if (want.length !== have.length) return true;
  return want.some((w, i) => {
    const h = have[i];
    if (!h || w.name !== h.name) return true;
    if (w.storageClassName !== undefined && w.storageClassName !== h.storageClassName) return true;
    return w.storage !== undefined && String(w.storage) !== String(h.storage);
  });
}
