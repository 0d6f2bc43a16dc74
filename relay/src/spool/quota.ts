// Free space on the spool as the relay's intake guard sees it. On a filesystem of its own (a PVC)
// that is what statfs reports. On an emptyDir with a sizeLimit, statfs reports the node's whole
// disk, while the kubelet evicts the pod (taking the spool with it) once the emptyDir outgrows the
// limit: the operator then passes the limit as maxBytes, and what is left under it counts.

export type SpoolSpace = {
  /** Free bytes statfs reports for the spool's filesystem. */
  filesystemFree: number;
  /** Bytes the spool holds (journal batches and message copies). */
  spoolBytes: number;
  /** spool.maxBytes: the quota, 0 for none. */
  maxBytes: number;
};

export function spoolFreeBytes(space: SpoolSpace): number {
  if (space.maxBytes <= 0) return space.filesystemFree;
  return Math.max(0, Math.min(space.filesystemFree, space.maxBytes - space.spoolBytes));
}
