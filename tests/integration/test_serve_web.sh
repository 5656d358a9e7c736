#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's pages (issue 13) in a real browser: Debian's chromium,
# headless, driven by puppeteer-core (scripts/puppeteer.sh installs it
# privately) against a kiln serve on 127.0.0.1; tests/browser/serve_web.js
# holds the checks. Screenshots of / and of a failed build's page go to
# $KILN_BUILD_DIR/screenshots/. Needs chromium, node and npm (scripts/
# deps.d/web): skipped without them, a failure when KILN_REQUIRE_BROWSER=1
# (or KILN_REQUIRE_SHARED=1, as .ci/run sets).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
source "$(dirname "$0")/serve_web_lib.sh"
need_browser() {
    if [ "${KILN_REQUIRE_BROWSER:-${KILN_REQUIRE_SHARED:-0}}" = 1 ]; then
        echo "FAIL - $*"; exit 1
    fi
    skip_test "$*"
}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || need_browser "no chromium (Debian: apt-get install chromium)"
PUPPETEER_DIR=$("$KILN_SOURCE_DIR/scripts/puppeteer.sh" 2>"$TMP/puppeteer.err") ||
    need_browser "no puppeteer-core: $(cat "$TMP/puppeteer.err")"
make_log_repo
start_serve --max-builds 2
SHOTS=${KILN_BUILD_DIR:-$TMP}/screenshots
mkdir -p "$SHOTS"
rc=0
KILN_BASE=$BASE KILN_TOKEN=$TOKEN TMP=$TMP SHOTS=$SHOTS CHROMIUM=$CHROMIUM PUPPETEER_DIR=$PUPPETEER_DIR \
    BIG_LINES=${BIG_LINES:-1000000} BENCH_OUT=${BENCH_OUT:-} \
    timeout 1200 node "$KILN_SOURCE_DIR/tests/browser/serve_web.js" >"$TMP/browser.out" 2>&1 || rc=$?
cat "$TMP/browser.out"
PASSES=$((PASSES + $(grep -c '^ok ' "$TMP/browser.out" || true)))
FAILS=$((FAILS + $(grep -c '^FAIL ' "$TMP/browser.out" || true)))
check "the browser test exited 0" test "$rc" = 0
check "no kiln serve error while the pages were used" lacks_line "$TMP/serve.log" "error:"
finish
