#!/bin/sh
# The README's promise on a machine where the Debian test packages were never installed: makes a
# minimal Debian 12 root (debootstrap --variant=minbase, debootstrap itself unpacked from its .deb,
# not installed on this machine), runs the system set-up in it cold (scripts/setup-system.ts: apt-get
# update + install), checks it again with --check, then runs the integration tests that need those
# tools (relay-security and relay-tls-auth use swaks with TLS and AUTH; setup-system).
# The repository (and what its .local and .cache links point to) is mounted read-only at the same
# path; the host's apt sources and resolv.conf are copied in. Needs root and the Debian mirror.
# Usage: scripts/fresh-machine-check.sh [suite...]   (default: the three suites above)
set -eu
repo="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "fresh-machine-check: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
work="$(mktemp -d /tmp/mailfleet-fresh-XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
node="$(readlink -f "$repo/.local/node/bin/node")"
suites="${*:-test/integration/relay-security.test.ts test/integration/relay-tls-auth.test.ts test/integration/setup-system.test.ts}"

(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root debootstrap && dpkg-deb -x debootstrap_*.deb ds)
start=$(date +%s)
DEBOOTSTRAP_DIR="$work/ds/usr/share/debootstrap" "$work/ds/usr/sbin/debootstrap" --variant=minbase \
  bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
echo "fresh-machine-check: debootstrap minbase in $(($(date +%s) - start)) s, $(chroot "$root" dpkg-query -W | wc -l) packages"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  rm -f "$root/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"

# Inside a private mount and PID namespace, so nothing outlives the check.
unshare --mount --pid --fork sh -eu -c '
  root="$1"; repo="$2"; node="$3"; suites="$4"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  for dir in "$repo" "$(readlink -f "$repo/.local")" "$(readlink -f "$repo/.cache")"; do
    mkdir -p "$root$dir"
    mount --rbind "$dir" "$root$dir"
    mount -o remount,bind,ro "$root$dir"
  done
  exec chroot "$root" /usr/bin/env -i PATH="$(dirname "$node"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    HOME=/root sh -eu -c "
      cd \"$repo\"
      if node scripts/setup-system.ts all --check; then echo \"fresh-machine-check: nothing was missing?\" >&2; exit 1; fi
      start=\$(date +%s)
      node scripts/setup-system.ts all
      echo \"fresh-machine-check: cold set-up in \$((\$(date +%s) - start)) s\"
      node scripts/setup-system.ts all --check
      swaks --support 2>&1 | grep -E \"^(===|\\*\\*\\*) (TLS|Basic AUTH)\"
      node --test --test-concurrency=1 $suites
    "
' sh "$root" "$repo" "$node" "$suites"
