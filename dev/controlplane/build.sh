#!/usr/bin/env bash
# Builds the binaries of the local Kubernetes control plane used by the
# integration tests (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, helm) from the Go modules next to this script, into
#   <repo>/.cache/controlplane/<first 12 hex of sha256(go.sum files)>/bin/
#
# Idempotent: when every binary is already in the cache it exits at once.
# Each binary is built to a temporary name and renamed into place, so an
# interrupted build never leaves a half-written binary behind.
#
# Usage: dev/controlplane/build.sh [--bin-dir]
#   --bin-dir   print the cache bin directory (no build) and exit
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Keep this list and its order in sync with MODULES in binaries.ts: the cache
# key is the sha256 of these go.sum files concatenated in this order.
modules=(etcd helm kube kwok)
key="$(cd "$here" && cat "${modules[@]/%//go.sum}" | sha256sum | cut -c1-12)"
bin="$root/.cache/controlplane/$key/bin"

if [[ "${1:-}" == "--bin-dir" ]]; then
  echo "$bin"
  exit 0
fi

# name|module dir|package
targets=(
  "etcd|etcd|go.etcd.io/etcd/server/v3"
  "kube-apiserver|kube|k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager|kube|k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler|kube|k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl|kube|k8s.io/kubernetes/cmd/kubectl"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok"
  "helm|helm|helm.sh/helm/v3/cmd/helm"
)

all_present() {
  local t
  for t in "${targets[@]}"; do
    [[ -x "$bin/${t%%|*}" ]] || return 1
  done
}

if all_present; then
  echo "controlplane: all binaries cached in $bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "controlplane: 'go' not found; install Go >= 1.26 (https://go.dev/dl/) or set" >&2
  echo "  KUBEBUILDER_ASSETS (envtest binaries) or MAILFLEET_TEST_KUBECONFIG (existing cluster)" >&2
  exit 1
fi

mkdir -p "$bin"
# Serialize concurrent builds (two test runs starting together).
exec 9>"$bin/../.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

# Version of a dependency as selected in a module (after replace directives).
modver() { # <module dir> <module path>
  (cd "$here/$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2")
}

kube_ver="$(modver kube k8s.io/kubernetes)" # e.g. v1.36.3
kube_minor="$(echo "$kube_ver" | cut -d. -f2)"
helm_ver="$(modver helm helm.sh/helm/v3)"
helm_k8s_minor="$(modver helm k8s.io/client-go | cut -d. -f2)" # client-go v0.36.x -> 36
for v in "$kube_ver" "$kube_minor" "$helm_ver" "$helm_k8s_minor"; do
  [[ -n "$v" ]] || { echo "controlplane: could not read versions from go.mod files" >&2; exit 1; }
done

ldflags_for() { # <name>
  case "$1" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl)
      local p f=""
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        f+=" -X $p.gitVersion=$kube_ver -X $p.gitMajor=1 -X $p.gitMinor=$kube_minor"
        f+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
      done
      echo "-s -w$f" ;;
    helm)
      echo "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_ver" \
        "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$helm_k8s_minor" \
        "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$helm_k8s_minor" ;;
    *) echo "-s -w" ;;
  esac
}

export CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly"
tmp_files=()
cleanup() { rm -f "${tmp_files[@]}"; }
trap cleanup EXIT

start_all=$SECONDS
for t in "${targets[@]}"; do
  IFS='|' read -r name dir pkg <<<"$t"
  if [[ -x "$bin/$name" ]]; then
    echo "controlplane: $name cached"
    continue
  fi
  echo "controlplane: building $name ($pkg) ..."
  start=$SECONDS
  tmp="$bin/.$name.tmp.$$"
  tmp_files+=("$tmp")
  (cd "$here/$dir" && go build -ldflags "$(ldflags_for "$name")" -o "$tmp" "$pkg")
  mv -f "$tmp" "$bin/$name"
  echo "controlplane: built $name in $((SECONDS - start))s"
done
echo "controlplane: done in $((SECONDS - start_all))s; binaries in $bin"
