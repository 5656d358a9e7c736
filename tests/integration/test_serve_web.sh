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
# Pages and API also under /kiln, behind nginx (a real reverse proxy) when
# there is one: it strips the prefix, as `location /kiln/ {proxy_pass .../;}` does.
start_serve --max-builds 2 --base-path /kiln
PROXY_URL=
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
if [ -n "$NGINX" ]; then
    mkdir -p "$TMP/nginx"
    nport=$(free_port)
    cat >"$TMP/nginx/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 256; }
http {
    access_log $TMP/nginx/access.log;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$nport;
        location /kiln/ {
            proxy_pass ${BASE}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 1h;
        }
    }
}
NGINX
    "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/out" 2>&1 &
    FAKE_PIDS+=("$!")
    if wait_for 60 curl -sf -o /dev/null "http://127.0.0.1:$nport/kiln/api/builds"; then
        PROXY_URL=http://127.0.0.1:$nport/kiln
    else
        echo "FAIL - nginx did not start:"; sed 's/^/  /' "$TMP/nginx/out" "$TMP/nginx/error.log"; exit 1
    fi
elif [ "${KILN_REQUIRE_BROWSER:-${KILN_REQUIRE_SHARED:-0}}" = 1 ]; then
    need_browser "no nginx for the --base-path part (Debian: apt-get install nginx-light)"
else
    echo "skip - no nginx: --base-path behind a proxy not tested (Debian: apt-get install nginx-light)"
fi
SHOTS=${KILN_BUILD_DIR:-$TMP}/screenshots
mkdir -p "$SHOTS"
rc=0
KILN_BASE=$BASE KILN_TOKEN=$TOKEN TMP=$TMP SHOTS=$SHOTS CHROMIUM=$CHROMIUM PUPPETEER_DIR=$PUPPETEER_DIR \
    BIG_LINES=${BIG_LINES:-1000000} BENCH_OUT=${BENCH_OUT:-} PROXY_URL=$PROXY_URL \
    timeout 1200 node "$KILN_SOURCE_DIR/tests/browser/serve_web.js" >"$TMP/browser.out" 2>&1 || rc=$?
cat "$TMP/browser.out"
PASSES=$((PASSES + $(grep -c '^ok ' "$TMP/browser.out" || true)))
FAILS=$((FAILS + $(grep -c '^FAIL ' "$TMP/browser.out" || true)))
check "the browser test exited 0" test "$rc" = 0
check "no kiln serve error while the pages were used" lacks_line "$TMP/serve.log" "error:"
finish
