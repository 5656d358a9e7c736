#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the path of a kubectl that runs, for tests that check a fake API
# server with a real client; exits 1 with the reason on stderr when there is
# none. Looks, in order, at:
#   1. $KUBECTL, if set (a path or a name on PATH); it must run, there is no
#      fallback when it does not;
#   2. a kubectl on PATH that runs `kubectl version --client`;
#   3. Debian's kubernetes-client, kept private: `apt-get download` of the
#      package into the cache directory and `dpkg-deb -x` of it there, nothing
#      installed system-wide. The cache is
#      ${KILN_KUBECTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/kubectl};
#      a kubectl already extracted there is reused without downloading.
# Works as root and as another user (apt-get download needs no privileges,
# only the package lists of a past apt-get update).
# Usage: scripts/kubectl.sh            (prints e.g. /usr/bin/kubectl)
set -euo pipefail

runs() { "$1" version --client >/dev/null 2>&1; }
die() { echo "kubectl.sh: $*" >&2; exit 1; }

if [ -n "${KUBECTL:-}" ]; then
    k=$(command -v -- "$KUBECTL" 2>/dev/null) || die "\$KUBECTL ($KUBECTL) is not a program"
    runs "$k" || die "\$KUBECTL ($k) does not run 'version --client'"
    echo "$k"
    exit 0
fi

if k=$(command -v kubectl 2>/dev/null) && runs "$k"; then
    echo "$k"
    exit 0
fi

if [ -n "${KILN_KUBECTL_CACHE:-}" ]; then
    cache=$KILN_KUBECTL_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    cache=$XDG_CACHE_HOME/kiln/kubectl
elif [ -n "${HOME:-}" ]; then
    cache=$HOME/.cache/kiln/kubectl
else
    die "no kubectl on PATH, and neither XDG_CACHE_HOME nor HOME is set to cache Debian's"
fi
k=$cache/root/usr/bin/kubectl
if [ -x "$k" ] && runs "$k"; then
    echo "$k"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "no kubectl on PATH, and no apt-get to fetch Debian's kubernetes-client"
command -v dpkg-deb >/dev/null 2>&1 || die "no kubectl on PATH, and no dpkg-deb to unpack Debian's kubernetes-client"
mkdir -p "$cache" 2>/dev/null || die "cannot create the cache directory $cache"
# A private directory per run, renamed into place at the end, so that two
# runs at once do not see each other's half-extracted files.
work=$(mktemp -d "$cache/fetch.XXXXXX") || die "cannot write to $cache"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download kubernetes-client) >"$work/apt.log" 2>&1; then
    sed 's/^/  /' "$work/apt.log" >&2
    die "apt-get download kubernetes-client failed (no package lists? run apt-get update)"
fi
deb=""
for f in "$work"/kubernetes-client_*.deb; do
    [ -e "$f" ] && deb=$f && break
done
[ -n "$deb" ] || die "apt-get download left no kubernetes-client .deb in $work"
dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
[ -x "$work/root/usr/bin/kubectl" ] || die "$(basename "$deb") has no usr/bin/kubectl"
runs "$work/root/usr/bin/kubectl" || die "the kubectl of $(basename "$deb") does not run 'version --client'"
basename "$deb" >"$work/root/PACKAGE"
# Another run may have won the race: then its copy is used and ours dropped.
mv -T "$work/root" "$cache/root" 2>/dev/null || true
runs "$k" || die "$k does not run after extraction"
echo "$k"
