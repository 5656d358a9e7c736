#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the directory of a private install of puppeteer-core (npm), for the
# browser tests of kiln serve's pages (tests/browser/), which drive Debian's
# chromium headless through it; exits 1 with the reason on stderr when there
# is none. Nothing is installed system-wide and nothing goes into the
# repository. puppeteer-core downloads no browser.
#
# The install is scripts/npm-client.sh's (under ~/.cache/kiln/node-puppeteer,
# reused when it loads). The version is pinned: puppeteer-core 24.9.0 (runs
# on Node.js 18, Debian 12's, and later). KILN_PUPPETEER_VERSION overrides it
# (a different version gets its own directory).
# Usage: scripts/puppeteer.sh
set -euo pipefail

version=${KILN_PUPPETEER_VERSION:-24.9.0}
exec bash "$(dirname "$0")/npm-client.sh" puppeteer \
    "require('puppeteer-core').launch;
     if (require('puppeteer-core/package.json').version !== '$version') process.exit(1)" \
    "puppeteer-core@$version"
