#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the directory of a private install of puppeteer-core (npm), for the
# browser tests of kiln serve's pages (tests/browser/), which drive Debian's
# chromium headless through it; exits 1 with the reason on stderr when there
# is none. Nothing is installed system-wide and nothing goes into the
# repository. puppeteer-core downloads no browser.
#
# The install lives in
#   ${KILN_PUPPETEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/node-puppeteer}
# and is reused when it loads; otherwise it is made with `npm install` from
# the npm registry into a temporary directory beside it and renamed into
# place, so that two runs at once do not see each other's half-made copy.
#
# The version is pinned: puppeteer-core 24.9.0 (runs on Node.js 18, Debian
# 12's, and later). KILN_PUPPETEER_VERSION overrides it (a different version
# gets its own directory).
# Usage: scripts/puppeteer.sh     (prints e.g. ~/.cache/kiln/node-puppeteer/24.9.0)
set -euo pipefail

version=${KILN_PUPPETEER_VERSION:-24.9.0}
die() { echo "puppeteer.sh: $*" >&2; exit 1; }
# loads DIR: puppeteer-core can be required from DIR, at that version
loads() {
    (cd "$1" && node -e "require('puppeteer-core').launch;
        if (require('puppeteer-core/package.json').version !== process.argv[1]) process.exit(1)" "$version") \
        >/dev/null 2>&1
}

command -v node >/dev/null 2>&1 || die "no node on PATH (Debian: apt-get install nodejs)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node does not run"
[ "$major" -ge 18 ] 2>/dev/null || die "node $(node --version) is too old: puppeteer-core $version needs 18 or later"

if [ -n "${KILN_PUPPETEER_CACHE:-}" ]; then
    cache=$KILN_PUPPETEER_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    cache=$XDG_CACHE_HOME/kiln/node-puppeteer
elif [ -n "${HOME:-}" ]; then
    cache=$HOME/.cache/kiln/node-puppeteer
else
    die "neither XDG_CACHE_HOME nor HOME is set to keep the client in"
fi
dir=$cache/$version
if [ -d "$dir" ] && loads "$dir"; then
    echo "$dir"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "no npm on PATH to install puppeteer-core (Debian: apt-get install npm)"
mkdir -p "$cache" 2>/dev/null || die "cannot create the cache directory $cache"
work=$(mktemp -d "$cache/install.XXXXXX") || die "cannot write to $cache"
trap 'rm -rf "$work"' EXIT
echo '{"name": "kiln-puppeteer", "private": true}' >"$work/package.json"
# --ignore-scripts: nothing the packages ship runs at install time.
if ! (cd "$work" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
        --cache "$cache/npm-cache" "puppeteer-core@$version") >"$work/npm.log" 2>&1; then
    sed 's/^/  /' "$work/npm.log" | tail -n 20 >&2
    die "npm install puppeteer-core@$version failed (is the npm registry reachable?)"
fi
loads "$work" || die "puppeteer-core@$version installed but does not load with node $(node --version)"
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
