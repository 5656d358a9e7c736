#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the SDK's examples the way a third party would: install kiln from
# BUILD_DIR into a temporary prefix, build each example out of tree with
# find_package(KilnSdk) and again with cc + pkg-config, then run pipelines
# that use them through --plugin-path and check what they did:
#  - sdk/examples/hello_step: prints, sets an output, succeeds;
#  - sdk/examples/http_wait (asynchronous: HTTP and timers) against a real
#    HTTP server on 127.0.0.1 (python3, an ephemeral port): waits until 200,
#    gives up at its own deadline, is aborted with a request in flight by a
#    step timeout (TIMEOUT) and between two polls by a failing sibling
#    (CANCELLED). Statuses are checked, never elapsed times.
#   usage: scripts/sdk-example.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
example=$root/sdk/examples/hello_step
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-sdk-example.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { echo "sdk-example: $*"; }
die() { echo "sdk-example: FAILED: $*" >&2; exit 1; }

step "installing $build into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; die "cmake --install"; }
kiln=$prefix/bin/kiln
[ -x "$kiln" ] || die "no kiln in $prefix/bin"

build_example() { # build_example DIR NAME SOURCE: -> $work/NAME-cmake, $work/NAME-cc
    local dir=$1 name=$2 src=$3
    step "building $name with find_package(KilnSdk)"
    cmake -S "$dir" -B "$work/$name-cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; die "configure $name"; }
    cmake --build "$work/$name-cmake" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; die "build $name"; }
    [ -f "$work/$name-cmake/kiln-step-$name.so" ] || die "no kiln-step-$name.so from CMake"

    step "building $name with cc and pkg-config"
    mkdir -p "$work/$name-cc"
    cflags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/${KILN_LIBDIR:-lib}/pkgconfig pkg-config --cflags kiln-plugin) \
        || die "pkg-config kiln-plugin"
    # shellcheck disable=SC2086
    cc $cflags -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -Wl,--no-undefined \
        -o "$work/$name-cc/kiln-step-$name.so" "$dir/$src" || die "cc $name"
}
build_example "$example" hello hello.c
build_example "$root/sdk/examples/http_wait" http-wait http_wait.c

# Only the installed kiln and the example: no build tree on the plugin path.
unset KILN_PLUGIN_PATH
for dir in "$work/hello-cmake" "$work/hello-cc"; do
    step "running the pipeline with the plugin from $dir"
    rc=0
    (cd "$work" && "$kiln" run "$example/pipeline.yaml" --plugin-path "$dir" --report "$work/report.json") \
        >"$work/run.log" 2>&1 || rc=$?
    cat "$work/run.log"
    [ "$rc" = 0 ] || die "kiln run exited $rc"
    grep -qF "[greet] hello, kiln" "$work/run.log" || die "no greeting from the plugin"
    grep -qF "[show] the plugin said: hello, kiln" "$work/run.log" || die "the output did not reach the next step"
    # installed under another prefix than the one kiln was configured with:
    # its helpers are found from the executable (PREFIX/libexec/kiln)
    ! grep -qF "cannot start kiln-watchdog" "$work/run.log" || die "the installed kiln did not find its kiln-watchdog"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["steps"][0]; sys.exit(not (s["uses"]=="hello" and s["status"]=="SUCCESS"))' \
        "$work/report.json" || die "report.json does not show hello SUCCESS"
    "$kiln" plugins hello --plugin-path "$dir" | grep -qE '^  name +string +default: world' \
        || die "kiln plugins hello does not show its option"
done

# ---- http-wait against a real HTTP server on 127.0.0.1
cat >"$work/server.py" <<'PY'
# /ready/X: 503 twice, then 200 (counted per path); /never/X: always 503;
# /hang/X: answers after 60 s. Each request is logged as "PATH N".
import http.server, sys, threading, time
hits = {}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with lock:
            n = hits[self.path] = hits.get(self.path, 0) + 1
        with open(sys.argv[1] + ".log", "a") as f:
            f.write(f"{self.path} {n}\n")
        if self.path.startswith("/hang"):
            time.sleep(60)
        code = 200 if self.path.startswith("/ready") and n > 2 else 503
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
python3 "$work/server.py" "$work/port" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || die "the HTTP server did not start"
url=http://127.0.0.1:$(cat "$work/port")
status() { # status REPORT STEP-ID
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print([s for s in r["steps"] if s["id"]==sys.argv[2]][0]["status"])' "$1" "$2"
}
wait_run() { # wait_run NAME DIR PIPELINE-TEXT: kiln run; sets rc, log in $work/NAME.log
    printf '%s\n' "$3" >"$work/$1.yaml"
    rc=0
    (cd "$work" && "$kiln" run "$work/$1.yaml" --plugin-path "$2" --report "$work/$1.json" --color never) \
        >"$work/$1.log" 2>&1 || rc=$?
    cat "$work/$1.log"
}
for dir in "$work/http-wait-cmake" "$work/http-wait-cc"; do
    t=$(basename "$dir")
    step "http-wait from $dir against $url"
    : >"$work/port.log"
    wait_run ready "$dir" "steps:
- id: ready
  uses: http-wait
  with: {url: '$url/ready/$t', interval: 50ms, timeout: 60s}
- id: show
  args: [echo, 'answered \${{ steps.ready.outputs.status }} after \${{ steps.ready.outputs.attempts }} requests']"
    [ "$rc" = 0 ] || die "http-wait on /ready: kiln run exited $rc"
    grep -qF "[show] answered 200 after 3 requests" "$work/ready.log" || die "http-wait's outputs did not reach the next step"
    grep -qF "[ready] waiting for $url/ready/$t: HTTP 503" "$work/ready.log" || die "http-wait did not say what it waits for"

    wait_run never "$dir" "steps:
- id: never
  uses: http-wait
  with: {url: '$url/never/$t', interval: 50ms, timeout: 500ms}"
    [ "$rc" = 1 ] || die "http-wait on /never: kiln run exited $rc, not 1"
    [ "$(status "$work/never.json" never)" = FAILURE ] || die "http-wait's own deadline: not FAILURE"
    grep -qF "did not answer 200 within the timeout" "$work/never.log" || die "http-wait's deadline: no reason"

    # A step timeout while a request hangs: cancel() aborts the request.
    wait_run hang "$dir" "steps:
- id: hang
  uses: http-wait
  timeout: 1s
  with: {url: '$url/hang/$t', request_timeout: 120s, timeout: 0s}"
    [ "$rc" = 1 ] || die "http-wait on /hang: kiln run exited $rc, not 1"
    [ "$(status "$work/hang.json" hang)" = TIMEOUT ] || die "step timeout with a request in flight: not TIMEOUT"
    grep -qxF "/hang/$t 1" "$work/port.log" || die "the request to /hang never reached the server"

    # A failing sibling cancels it once its first request was answered,
    # mostly while its 1 s timer is pending.
    : >"$work/port.log"
    wait_run sibling "$dir" "steps:
- id: wait
  uses: http-wait
  with: {url: '$url/never/$t', interval: 1s, timeout: 0s}
- id: fail
  waitFor: ['-']
  script: |
    while ! grep -q '^/never' '$work/port.log'; do sleep 0.05; done
    exit 3"
    [ "$rc" = 1 ] || die "failing sibling: kiln run exited $rc, not 1"
    [ "$(status "$work/sibling.json" wait)" = CANCELLED ] || die "failing sibling: http-wait not CANCELLED"
    [ "$(status "$work/sibling.json" fail)" = FAILURE ] || die "failing sibling: not FAILURE"
done
# ---- ndjson-post: a sink on the shipping core, against a receiver that
# refuses its first request (503) and keeps the bodies of the others.
ship=$root/sdk/examples/ship_sink
step "building ndjson-post with find_package(KilnSdk)"
cmake -S "$ship" -B "$work/ship-cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; die "configure ndjson-post"; }
cmake --build "$work/ship-cmake" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; die "build ndjson-post"; }
cat >"$work/recv.py" <<'PY'
import http.server, sys, os
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global n
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n += 1
        code = 503 if n == 1 else 200
        if code == 200:
            with open(sys.argv[1] + ".bodies", "ab") as f:
                f.write(body)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
python3 "$work/recv.py" "$work/rport" &
recv=$!
trap 'kill $server $recv 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/rport" ] && break; sleep 0.1; done
[ -s "$work/rport" ] || die "the receiver did not start"
rc=0
(cd "$work" && "$kiln" run "$ship/pipeline.yaml" --quiet --plugin-path "$work/ship-cmake" \
    --sink "ndjson-post:endpoint=http://127.0.0.1:$(cat "$work/rport")/logs,batch_records=300") >"$work/ship.log" 2>&1 || rc=$?
cat "$work/ship.log"
[ "$rc" = 0 ] || die "kiln run with ndjson-post exited $rc"
python3 - "$work/rport.bodies" <<'PY' || die "the receiver did not get every line once, in order"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
lines = [r["text"] for r in recs if r.get("step") == "count" and r["stream"] == "stdout"]
assert lines == ["line %d" % i for i in range(1, 2001)], len(lines)
assert any(r["stream"] == "stderr" and r["text"] == "to stderr" for r in recs)
assert len({r["id"] for r in recs}) == len(recs)
PY
step "ok"
