#!/usr/bin/env bash
# Builds the Kubernetes manifest linters the linter tests run (kubeconform, kube-score) from the
# pinned Go modules next to this script, into
#   <repo>/.cache/linters/<first 12 hex of sha256(go.sum files)>/bin/
# the way dev/controlplane/build.sh builds the control plane: idempotent (exits at once when
# cached), each binary built to a temporary name and renamed into place.
#
# Usage: test/linters/build.sh [--bin-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Keep in sync with LINTER_MODULES in test/helpers/linters.ts (the cache key).
modules=(kubeconform kube-score)
# The Kubernetes OpenAPI document kubeconform's schemas are made from comes from the control
# plane's kube module (the same Kubernetes version the integration tests run), so its go.sum is
# part of the key too.
kube="$here/../../dev/controlplane/kube"
key="$(cd "$here" && cat "${modules[@]/%//go.sum}" "$kube/go.sum" | sha256sum | cut -c1-12)"
bin="$root/.cache/linters/$key/bin"

if [[ "${1:-}" == "--bin-dir" ]]; then
  echo "$bin"
  exit 0
fi

# name|module dir|package
targets=(
  "kubeconform|kubeconform|github.com/yannh/kubeconform/cmd/kubeconform"
  "kube-score|kube-score|github.com/zegl/kube-score/cmd/kube-score"
)

all_present() {
  local t
  for t in "${targets[@]}"; do
    [[ -x "$bin/${t%%|*}" ]] || return 1
  done
  [[ -f "$bin/kubernetes-swagger.json" ]]
}

if all_present; then
  echo "linters: all binaries cached in $bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "linters: 'go' not found; install Go >= 1.26 (scripts/setup-system.ts checks it)" >&2
  exit 1
fi

mkdir -p "$bin"
exec 9>"$bin/../.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
export CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly"
for t in "${targets[@]}"; do
  IFS='|' read -r name dir pkg <<<"$t"
  [[ -x "$bin/$name" ]] && continue
  tmp="$bin/.$name.tmp.$$"
  echo "linters: building $name ($pkg)"
  (cd "$here/$dir" && go build -o "$tmp" "$pkg")
  mv "$tmp" "$bin/$name"
done
if [[ ! -f "$bin/kubernetes-swagger.json" ]]; then
  # Kubernetes' own OpenAPI v2 document (api/openapi-spec/swagger.json of k8s.io/kubernetes), from
  # the module cache (downloaded through the module proxy when missing).
  src="$(cd "$kube" && go mod download -json k8s.io/kubernetes | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  cp "$src/api/openapi-spec/swagger.json" "$bin/.kubernetes-swagger.json.$$"
  mv "$bin/.kubernetes-swagger.json.$$" "$bin/kubernetes-swagger.json"
fi
echo "linters: done; binaries in $bin"
