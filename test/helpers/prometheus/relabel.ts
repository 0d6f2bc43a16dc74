// Prometheus' target relabelling (action `replace`, the default) applied to a Kubernetes pod's meta
// labels, so a loopback Prometheus with static targets gets exactly the labels a ServiceMonitor's
// `relabelings` would give the pod's target.

export interface Relabeling {
  sourceLabels?: string[];
  targetLabel?: string;
  separator?: string;
  regex?: string;
  replacement?: string;
  action?: string;
}

export interface PodMeta {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
}

/** The `__meta_kubernetes_*` labels Prometheus' pod service discovery gives a pod's target. */
export function podMetaLabels(pod: PodMeta): Record<string, string> {
  const meta: Record<string, string> = {
    __meta_kubernetes_namespace: pod.metadata.namespace,
    __meta_kubernetes_pod_name: pod.metadata.name,
  };
  for (const [key, value] of Object.entries(pod.metadata.labels ?? {}))
    meta[`__meta_kubernetes_pod_label_${key.replace(/[^a-zA-Z0-9_]/g, '_')}`] = value;
  return meta;
}

/**
 * Applies `relabelings` to `labels` and returns the target's labels without the `__`-prefixed
 * ones. Only `replace` is implemented; anything else throws (the test would be lying otherwise).
 */
export function relabel(labels: Record<string, string>, relabelings: Relabeling[]): Record<string, string> {
  const out = { ...labels };
  for (const r of relabelings) {
    const action = (r.action ?? 'replace').toLowerCase();
    if (action !== 'replace') throw new Error(`relabel action ${action} is not implemented here`);
    const value = (r.sourceLabels ?? []).map((l) => out[l] ?? '').join(r.separator ?? ';');
    const match = new RegExp(`^(?:${r.regex ?? '(.*)'})$`).exec(value);
    if (!match || !r.targetLabel) continue;
    const replaced = (r.replacement ?? '$1').replace(
      /\$\{?(\d+)\}?/g,
      (_m, n: string) => match[Number(n)] ?? '',
    );
    if (replaced === '') delete out[r.targetLabel];
    else out[r.targetLabel] = replaced;
  }
  return Object.fromEntries(Object.entries(out).filter(([key]) => !key.startsWith('__')));
}
