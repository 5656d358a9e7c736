#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the directory of a private install of Google's Cloud Run client for
# Node.js (@google-cloud/run, whose node_modules a script can require), for
# tests that check the fake Cloud Run API with a real client; exits 1 with the
# reason on stderr when there is none. Nothing is installed system-wide and
# nothing goes into the repository.
#
# The install lives in
#   ${KILN_CLOUDRUN_CLIENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/node-cloudrun}
# and is reused when it loads; otherwise it is made with `npm install` from
# the npm registry into a temporary directory beside it and renamed into
# place, so that two runs at once do not see each other's half-made copy.
#
# The version is pinned: @google-cloud/run 3.3.0, the last release that runs
# on Node.js 18 (Debian 12's nodejs) as well as 20; 4.x needs Node.js 22.
# KILN_CLOUDRUN_CLIENT_VERSION overrides it (a different version gets its own
# directory).
# Usage: scripts/cloudrun-client.sh     (prints e.g. ~/.cache/kiln/node-cloudrun/3.3.0)
set -euo pipefail

version=${KILN_CLOUDRUN_CLIENT_VERSION:-3.3.0}
die() { echo "cloudrun-client.sh: $*" >&2; exit 1; }
# loads DIR: the client and its auth library can be required from DIR
loads() {
    (cd "$1" && node -e "require('@google-cloud/run').v2.ServicesClient; require('google-auth-library').OAuth2Client;
        if (require('@google-cloud/run/package.json').version !== process.argv[1]) process.exit(1)" "$version") \
        >/dev/null 2>&1
}

command -v node >/dev/null 2>&1 || die "no node on PATH (Debian: apt-get install nodejs)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node does not run"
[ "$major" -ge 18 ] 2>/dev/null || die "node $(node --version) is too old: @google-cloud/run $version needs 18 or later"

if [ -n "${KILN_CLOUDRUN_CLIENT_CACHE:-}" ]; then
    cache=$KILN_CLOUDRUN_CLIENT_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    cache=$XDG_CACHE_HOME/kiln/node-cloudrun
elif [ -n "${HOME:-}" ]; then
    cache=$HOME/.cache/kiln/node-cloudrun
else
    die "neither XDG_CACHE_HOME nor HOME is set to keep the client in"
fi
dir=$cache/$version
if [ -d "$dir" ] && loads "$dir"; then
    echo "$dir"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "no npm on PATH to install @google-cloud/run (Debian: apt-get install npm)"
mkdir -p "$cache" 2>/dev/null || die "cannot create the cache directory $cache"
work=$(mktemp -d "$cache/install.XXXXXX") || die "cannot write to $cache"
trap 'rm -rf "$work"' EXIT
echo '{"name": "kiln-cloudrun-client", "private": true}' >"$work/package.json"
# --ignore-scripts: nothing the packages ship runs at install time.
if ! (cd "$work" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
        --cache "$cache/npm-cache" "@google-cloud/run@$version") >"$work/npm.log" 2>&1; then
    sed 's/^/  /' "$work/npm.log" | tail -n 20 >&2
    die "npm install @google-cloud/run@$version failed (is the npm registry reachable?)"
fi
loads "$work" || die "@google-cloud/run@$version installed but does not load with node $(node --version)"
rm -f "$work/npm.log"
if [ -d "$dir" ]; then
    # A broken or half-made copy: move it aside, then drop it.
    mv -T "$dir" "$work/old" 2>/dev/null || true
fi
# Another run may have won the race: then its copy is used and ours dropped.
mkdir "$work/new" && mv "$work/node_modules" "$work/package.json" "$work/new/" &&
    { [ ! -f "$work/package-lock.json" ] || mv "$work/package-lock.json" "$work/new/"; }
mv -T "$work/new" "$dir" 2>/dev/null || true
loads "$dir" || die "$dir does not load after installation"
echo "$dir"
