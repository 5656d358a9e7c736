#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the directory of a private, pinned install of npm packages (whose
# node_modules a script can require), for tests that check a fake server with
# a real client; exits 1 with the reason on stderr when there is none.
# Nothing is installed system-wide and nothing goes into the repository.
# The same scheme as scripts/cloudrun-client.sh, for any set of packages:
#
#   scripts/npm-client.sh NAME 'JS THAT REQUIRES THEM' PKG@VERSION...
#
# The install lives in
#   ${KILN_NPM_CLIENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}/node-NAME/KEY
# (KEY: the pinned packages) and is reused when the check loads; otherwise
# it is made with `npm install --ignore-scripts` into a temporary directory
# beside it and renamed into place, so two runs at once do not see each
# other's half-made copy. Used by scripts/otlp-client.sh and
# scripts/cloudlogging-client.sh.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: npm-client.sh NAME CHECK_JS PKG@VERSION..." >&2; exit 2; }
name=$1 check=$2; shift 2
die() { echo "npm-client.sh ($name): $*" >&2; exit 1; }
loads() { (cd "$1" && node -e "$check") >/dev/null 2>&1; }

command -v node >/dev/null 2>&1 || die "no node on PATH (Debian: apt-get install nodejs)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node does not run"
[ "$major" -ge 18 ] 2>/dev/null || die "node $(node --version) is too old: 18 or later is needed"

if [ -n "${KILN_NPM_CLIENT_CACHE:-}" ]; then
    base=$KILN_NPM_CLIENT_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    base=$XDG_CACHE_HOME/kiln
elif [ -n "${HOME:-}" ]; then
    base=$HOME/.cache/kiln
else
    die "neither XDG_CACHE_HOME nor HOME is set to keep the client in"
fi
cache=$base/node-$name
key=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
dir=$cache/$key
if [ -d "$dir" ] && loads "$dir"; then
    echo "$dir"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "no npm on PATH to install $* (Debian: apt-get install npm)"
mkdir -p "$cache" 2>/dev/null || die "cannot create the cache directory $cache"
work=$(mktemp -d "$cache/install.XXXXXX") || die "cannot write to $cache"
trap 'rm -rf "$work"' EXIT
echo "{\"name\": \"kiln-$name-client\", \"private\": true}" >"$work/package.json"
if ! (cd "$work" && timeout 600 npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
        --cache "$cache/npm-cache" "$@") >"$work/npm.log" 2>&1; then
    sed 's/^/  /' "$work/npm.log" | tail -n 20 >&2
    die "npm install $* failed (is the npm registry reachable?)"
fi
loads "$work" || die "$* installed but does not load with node $(node --version)"
rm -f "$work/npm.log"
[ ! -d "$dir" ] || mv -T "$dir" "$work/old" 2>/dev/null || true
mkdir "$work/new" && mv "$work/node_modules" "$work/package.json" "$work/new/" &&
    { [ ! -f "$work/package-lock.json" ] || mv "$work/package-lock.json" "$work/new/"; }
mv -T "$work/new" "$dir" 2>/dev/null || true
loads "$dir" || die "$dir does not load after installation"
echo "$dir"
