#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the directory of a private install of GitHub's webhook examples and
# signer for Node.js (@octokit/webhooks-examples: the push payloads GitHub
# documents; @octokit/webhooks: signs them as GitHub does), whose
# node_modules a script can require; exits 1 with the reason on stderr when
# there is none. Nothing is installed system-wide, nothing goes into the
# repository; made as scripts/cloudrun-client.sh makes its install (npm into
# a temporary directory beside the cache, renamed into place).
#
# Pinned: @octokit/webhooks 12.3.2 (the last CommonJS major; 13 is ESM only)
# and @octokit/webhooks-examples 7.6.1. The cache is
#   ${KILN_OCTOKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/node-octokit}/VERSIONS
# Usage: scripts/octokit-webhooks.sh
set -euo pipefail

hooks=12.3.2
examples=7.6.1
die() { echo "octokit-webhooks.sh: $*" >&2; exit 1; }
loads() {
    (cd "$1" && node -e "
const { Webhooks } = require('@octokit/webhooks');
const ex = require('@octokit/webhooks-examples');
if (require('@octokit/webhooks/package.json').version !== process.argv[1]) process.exit(1);
if (!ex.find((e) => e.name === 'push')) process.exit(1);
new Webhooks({ secret: 'x' });" "$hooks") >/dev/null 2>&1
}

command -v node >/dev/null 2>&1 || die "no node on PATH (Debian: apt-get install nodejs)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node does not run"
[ "$major" -ge 18 ] 2>/dev/null || die "node $(node --version) is too old: @octokit/webhooks $hooks needs 18"

if [ -n "${KILN_OCTOKIT_CACHE:-}" ]; then
    cache=$KILN_OCTOKIT_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
    cache=$XDG_CACHE_HOME/kiln/node-octokit
elif [ -n "${HOME:-}" ]; then
    cache=$HOME/.cache/kiln/node-octokit
else
    die "neither XDG_CACHE_HOME nor HOME is set to keep the install in"
fi
dir=$cache/$hooks-$examples
if [ -d "$dir" ] && loads "$dir"; then
    echo "$dir"
    exit 0
fi
command -v npm >/dev/null 2>&1 || die "no npm on PATH (Debian: apt-get install npm)"
mkdir -p "$cache" 2>/dev/null || die "cannot create the cache directory $cache"
work=$(mktemp -d "$cache/install.XXXXXX") || die "cannot write to $cache"
trap 'rm -rf "$work"' EXIT
echo '{"name": "kiln-octokit-webhooks", "private": true}' >"$work/package.json"
if ! (cd "$work" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
        --cache "$cache/npm-cache" "@octokit/webhooks@$hooks" "@octokit/webhooks-examples@$examples") \
        >"$work/npm.log" 2>&1; then
    sed 's/^/  /' "$work/npm.log" | tail -n 20 >&2
    die "npm install @octokit/webhooks@$hooks @octokit/webhooks-examples@$examples failed (is the npm registry reachable?)"
fi
loads "$work" || die "the install in $work does not load"
rm -rf "$dir"
mv "$work" "$dir" || die "cannot move the install into $dir"
trap - EXIT
echo "$dir"
