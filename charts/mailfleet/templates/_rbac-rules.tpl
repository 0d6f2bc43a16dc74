{{- /*
The operator's least-privilege rules, in a ClusterRole (every namespace) or in one Role per
namespace of operator.watchNamespaces (templates/rbac.yaml). Keep them equal to the ClusterRole of
operator/deploy/rbac.yaml: test/unit/chart.test.ts compares them.
*/}}
{{- define "mailfleet.operatorRules" }}
  # The API it serves: read specs, write status; spec.suspend is patched by the bounce autopilot,
  # a pool's metadata.finalizers (mailfleet.dev/drain, spec.deletionPolicy) by the operator.
  - apiGroups: [mailfleet.dev]
    resources: [relaypools, sendingdomains, ratelimits]
    verbs: [get, list, watch]
  - apiGroups: [mailfleet.dev]
    resources: [relaypools, sendingdomains]
    verbs: [patch]
  - apiGroups: [mailfleet.dev]
    resources: [relaypools/status, sendingdomains/status, ratelimits/status]
    verbs: [get, patch, update]
  # blockOwnerDeletion on children needs update on the owners' finalizers subresource.
  - apiGroups: [mailfleet.dev]
    resources: [relaypools/finalizers, sendingdomains/finalizers]
    verbs: [update]
  # Children: watched through a label selector, applied server-side, pruned.
  - apiGroups: ['']
    resources: [configmaps, secrets, services]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [apps]
    resources: [deployments, statefulsets]
    verbs: [get, list, watch, create, patch, delete]
  # Absorb Jobs of retained spool claims: created (never patched: a Job's template is immutable),
  # deleted once their ordinal runs a relay again or they failed.
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [get, list, watch, create, delete]
  - apiGroups: [policy]
    resources: [poddisruptionbudgets]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [autoscaling]
    resources: [horizontalpodautoscalers]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [monitoring.coreos.com]
    resources: [servicemonitors]
    verbs: [get, list, watch, create, patch, delete]
  # tls.issuerRef: the pool's cert-manager Certificate (the Secret cert-manager fills is read above).
  - apiGroups: [cert-manager.io]
    resources: [certificates]
    verbs: [get, list, watch, create, patch, delete]
  # Relay pods: listed for their addresses (the bounce autopilot scrapes their :8080/metrics), and
  # so that a retained claim is absorbed only once its relay is gone.
  - apiGroups: ['']
    resources: [pods]
    verbs: [get, list, watch]
  # StatefulSet spool claims: read only, to report those of removed relays (never deleted).
  - apiGroups: ['']
    resources: [persistentvolumeclaims]
    verbs: [get, list, watch]
  - apiGroups: ['']
    resources: [events]
    verbs: [create, patch]
{{- end }}
