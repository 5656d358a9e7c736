#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve --executor (issue 12): every build of the server runs its
# steps in their images through an executor instance of its own, on REAL
# components: podman's Docker-compatible API service (rootful, runc, vfs,
# a private configuration and storage, as test_container_executor.sh) and
# images made on the spot from busybox-static (FROM scratch), a real bare
# repository, real HTTP with curl.
#
# Checked: the options and the engine are checked once at startup (exit 2,
# one line, nothing listening); two builds at once (--max-builds 2), the
# second opened while the first one's container runs, both see the
# image's files (not the host's) and both succeed, their logs in the API;
# a build cancelled through the API, one that times out and one cut off by
# SIGTERM leave no container, volume or network; a kill -9 of the server
# leaves its build's containers, which the next start removes.
#
# Without podman (or not root) the test is skipped, unless
# KILN_REQUIRE_SHARED=1 (as .ci/run sets, which installs
# scripts/deps.d/executor) makes that a failure; KILN_SKIP_ENGINE_TESTS=1
# always skips it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"

cannot_run() {
    if [ "${KILN_SKIP_ENGINE_TESTS:-0}" != 1 ] && [ "${KILN_REQUIRE_SHARED:-0}" = 1 ]; then
        echo "FAIL - the real engine cannot run here: $* (KILN_REQUIRE_SHARED=1;"
        echo "       install the packages of scripts/deps.d/executor)"
        exit 1
    fi
    skip_test "$*"
}
for tool in podman runc curl python3 git; do
    command -v "$tool" >/dev/null 2>&1 || cannot_run "$tool is not installed"
done
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q static || BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || cannot_run "no static busybox (busybox-static) to put into FROM-scratch images"
[ "$(id -u)" = 0 ] || cannot_run "podman's rootful service needs root (uid $(id -u))"

# ---------------------------------------------------------------------------
echo "# fixture: a private podman API service, an image from busybox"
E=$TMP/engine
. "$KILN_SOURCE_DIR/tests/tools/podman_engine.sh"
podman_engine_conf "$E"
env CONTAINERS_CONF="$E/containers.conf" CONTAINERS_STORAGE_CONF="$E/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$E/registries.conf" TMPDIR="$E/tmp" \
    podman system service --time=0 "unix://$E/podman.sock" >"$E/podman.log" 2>&1 &
FAKE_PIDS+=($!)
SOCK=$E/podman.sock
up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$@" 2>/dev/null)" != 000 ]; }
wait_for 120 up --unix-socket "$SOCK" http://d/_ping || cannot_run "podman service did not answer within 120s"
curl -s -o /dev/null --max-time 120 --unix-socket "$SOCK" http://d/v1.41/version ||
    cannot_run "podman service did not answer /version within 120s"
eapi() { curl -s --unix-socket "$SOCK" "http://d/v1.41$1"; }
R=$TMP/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
for t in sh cat echo ls sleep test true hostname; do ln -sf busybox "$R/bin/$t"; done
echo "from-the-image" >"$R/etc/image-marker"
tar -C "$R" -cf "$TMP/rootfs.tar" .
curl -s --unix-socket "$SOCK" -X POST -H 'Content-Type: application/x-tar' --data-binary @"$TMP/rootfs.tar" \
    "http://d/v1.41/images/create?fromSrc=-&repo=ubuntu&tag=latest" >/dev/null
# Named as a common image (it is not pulled: pull=missing finds it).
[ "$(eapi /images/ubuntu/json | python3 -c 'import json,sys; print(bool(json.load(sys.stdin).get("Id")))')" = True ] ||
    { echo "FAIL - fixture: the image could not be made"; exit 1; }
KX="container:engine=unix://$SOCK"

# What kiln made that is on the engine, for one build (label kiln.build=ID)
# or for any of the kiln serve processes this test started (label
# kiln.owner=HOST:PID:START): one "KIND NAME [STATE]" line each. Podman
# keeps networks in one directory for every service of the machine, so
# other tests' networks are seen too: only ours count.
OUR_PIDS=()
on_engine() {
    local f
    f=$(python3 -c 'import json,urllib.parse; print(urllib.parse.quote(json.dumps({"label":["kiln.owner"]})))')
    {
        eapi "/containers/json?all=1&filters=$f" | python3 -c 'import json,sys; [print("container", c["Names"][0], c["State"], c["Labels"].get("kiln.build"), c["Labels"].get("kiln.owner")) for c in json.load(sys.stdin)]'
        eapi "/volumes?filters=$f" | python3 -c 'import json,sys; [print("volume", v["Name"], "-", v["Labels"].get("kiln.build"), v["Labels"].get("kiln.owner")) for v in json.load(sys.stdin)["Volumes"] or []]'
        eapi "/networks?filters=$f" | python3 -c 'import json,sys; [print("network", n["Name"], "-", n["Labels"].get("kiln.build"), n["Labels"].get("kiln.owner")) for n in json.load(sys.stdin)]'
    } 2>&1 | python3 -c '
import sys
build, pids = sys.argv[1], sys.argv[2].split()
for l in sys.stdin:
    kind, name, state, bid, owner = l.split()
    pid = owner.split(":")[-2] if owner.count(":") >= 2 else ""
    if (build and bid == build) or (not build and pid in pids):
        print(kind, name, state)' "${1:-}" "${OUR_PIDS[*]}"
}
nothing_of() { [ -z "$(on_engine "${1:-}")" ]; }
# (grep without -q: with pipefail, -q's early exit would fail the pipe)
running_container_of() { on_engine "$1" | grep "^container .* running$" >/dev/null; }
# When the test ends, however: what our servers left is removed before
# lib.sh's cleanup stops the engine (networks outlive a private engine).
engine_cleanup() {
    local kind name rest
    on_engine "" | while read -r kind name rest; do
        case $kind in
        container) curl -s -o /dev/null --unix-socket "$SOCK" -X DELETE "http://d/v1.41/containers/${name#/}?force=1" ;;
        volume) curl -s -o /dev/null --unix-socket "$SOCK" -X DELETE "http://d/v1.41/volumes/$name?force=1" ;;
        network) curl -s -o /dev/null --unix-socket "$SOCK" -X DELETE "http://d/v1.41/networks/$name" ;;
        esac
    done
}
trap 'engine_cleanup; cleanup' EXIT

# ---------------------------------------------------------------------------
echo "# fixture: a repository whose steps run in the image"
git init -q --bare -b master "$TMP/app.git"
git init -q -b master "$TMP/work"
# gate: waits for /workspace/$_GATE (the test makes it in DATA/builds/ID/src)
cat >"$TMP/work/cloudbuild.yaml" <<'YAML'
substitutions: {_GATE: "", _TAG: "none"}
steps:
- id: inimage
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'cat /etc/image-marker; test -e /etc/debian_version && echo HOST-ETC-SEEN; echo "tag $_TAG"; true']
- id: gate
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'trap "echo got-term; exit 143" TERM; echo waiting; while [ -n "$_GATE" ] && [ ! -e "/workspace/$_GATE" ]; do sleep 0.1; done; echo "gate open $_TAG"']
YAML
cat >"$TMP/work/slow.yaml" <<'YAML'
timeout: 30s
steps:
- id: slow
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'trap "exit 143" TERM; echo sleeping; while true; do sleep 0.1; done']
YAML
git -C "$TMP/work" add -A
git -C "$TMP/work" commit -q -m first
git -C "$TMP/work" push -q "$TMP/app.git" master
cat >"$TMP/triggers.yaml" <<YAML
triggers:
- name: img
  repo: $TMP/app.git
  branch: ^master\$
- name: slow
  repo: $TMP/app.git
  branch: ^master\$
  filename: slow.yaml
YAML
port=$(free_port)

# ---------------------------------------------------------------------------
echo "# checked once at startup: options, then the engine"
RC=0
timeout 120 "$KILN" serve --triggers "$TMP/triggers.yaml" --listen "127.0.0.1:$port" --data "$TMP/d0" \
    --executor container:bogus=1 >"$TMP/bad1.txt" 2>&1 || RC=$?
check "an unknown option: exit 2" test "$RC" = 2
check "... one line naming it" test "$(wc -l <"$TMP/bad1.txt")" = 1
check "... which says what the executor takes" has_line "$TMP/bad1.txt" "plugin 'container' has no option 'bogus' (it takes: engine, pull, auth)"
RC=0
timeout 120 env -u DOCKER_HOST -u CONTAINER_HOST XDG_RUNTIME_DIR="$TMP/none" \
    KILN_EXECUTOR="container:engine=unix://$TMP/no-engine.sock" \
    "$KILN" serve --triggers "$TMP/triggers.yaml" --listen "127.0.0.1:$port" --data "$TMP/d0" >"$TMP/bad2.txt" 2>&1 || RC=$?
check "no engine (KILN_EXECUTOR): exit 2" test "$RC" = 2
check "... one line" test "$(wc -l <"$TMP/bad2.txt")" = 1
check "... saying what it tried" has_line "$TMP/bad2.txt" "no container engine answers (tried unix://$TMP/no-engine.sock"
check "... and nothing listened" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/builds")" = 000
RC=0
timeout 120 "$KILN" serve --triggers "$TMP/triggers.yaml" --listen "127.0.0.1:$port" --data "$TMP/d0" \
    --executor nosuch >"$TMP/bad3.txt" 2>&1 || RC=$?
check "an executor that is not installed: exit 2" test "$RC" = 2
check "... saying so" has_line "$TMP/bad3.txt" "no executor plugin named 'nosuch'"

# ---------------------------------------------------------------------------
echo "# two builds at once, each in its own instance"
start_serve --max-builds 2 --grace 3s --kill-grace 20s --executor "$KX"
OUR_PIDS+=("$SERVE_PID")
check "the server says the executor is ready" has_line "$TMP/serve.log" "executor container: ready"
check "its check left nothing on the engine" nothing_of
a=$(run_trigger img '{"branch": "master", "substitutions": {"_GATE": "gate-a", "_TAG": "A"}}')
check "build A is WORKING" wait_status 120 "$a" WORKING
check "A's gate step runs in a container" wait_for 300 running_container_of "$a"
# B is opened (its open() sweeps what dead owners left) while A's
# container runs: A's must survive it.
b=$(run_trigger img '{"branch": "master", "substitutions": {"_GATE": "gate-b", "_TAG": "B"}}')
check "build B is WORKING beside A" wait_status 120 "$b" WORKING
check "B's gate step runs in a container" wait_for 300 running_container_of "$b"
check "A's container still runs" running_container_of "$a"
check "each build has its own network" \
    test "$(on_engine "$a" | grep -c '^network') $(on_engine "$b" | grep -c '^network')" = "1 1"
touch "$TMP/data/builds/$b/src/gate-b"
check "B ends first" wait_status 300 "$b" SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "... SUCCESS" test "$(bstatus "$b")" = SUCCESS
check "A still runs after B ended" running_container_of "$a"
touch "$TMP/data/builds/$a/src/gate-a"
check "then A ends" wait_status 300 "$a" SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "... SUCCESS" test "$(bstatus "$a")" = SUCCESS
for x in a b; do
    id=${!x}
    curl -s "$BASE/api/builds/$id/log?step=inimage" >"$TMP/log-$x.json"
    check "$x: its step saw the image's file (API log)" \
        test "$(jq_ '"from-the-image" in [r["text"] for r in j["records"]]' <"$TMP/log-$x.json")" = True
    check "$x: and not the host's" test "$(jq_ '"HOST-ETC-SEEN" in [r["text"] for r in j["records"]]' <"$TMP/log-$x.json")" = False
    curl -s "$BASE/api/builds/$id/log?step=gate" >"$TMP/glog-$x.json"
    check "$x: its gate step's log is its own" \
        test "$(jq_ '[r["text"] for r in j["records"] if r["text"].startswith("gate open")]' <"$TMP/glog-$x.json")" = "['gate open ${x^^}']"
    check "$x: its step logs are files too" has_line "$TMP/data/builds/$id/logs/inimage.log" "from-the-image"
    check "$x: nothing of it is left on the engine" wait_for 120 nothing_of "$id"
done

# ---------------------------------------------------------------------------
echo "# a build cancelled through the API leaves nothing"
c=$(run_trigger img '{"branch": "master", "substitutions": {"_GATE": "never", "_TAG": "C"}}')
check "build C's container runs" wait_for 300 running_container_of "$c"
api POST "/api/builds/$c:cancel" >/dev/null
check "cancel: 200" test "$(code)" = 200
check "C ends CANCELLED" wait_status 300 "$c" CANCELLED SUCCESS FAILURE INTERNAL_ERROR
check "... CANCELLED" test "$(bstatus "$c")" = CANCELLED
check "no container, volume or network of C is left" wait_for 120 nothing_of "$c"

# ---------------------------------------------------------------------------
echo "# a build that times out leaves nothing"
t=$(run_trigger slow '{"branch": "master"}')
# (its timeout, 30s, is a bound of the build, not of the test's patience:
# on a loaded machine the container may start late, so this is not checked
# as a failure when it did not)
wait_for 300 running_container_of "$t" || echo "note - the slow build's container never ran before its timeout"
check "the slow build ends" wait_status 300 "$t" TIMEOUT SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "... TIMEOUT" test "$(bstatus "$t")" = TIMEOUT
check "nothing of it is left" wait_for 120 nothing_of "$t"

# ---------------------------------------------------------------------------
echo "# SIGTERM: the grace runs out, the running build is cancelled, nothing is left"
d=$(run_trigger img '{"branch": "master", "substitutions": {"_GATE": "never", "_TAG": "D"}}')
check "build D's container runs" wait_for 300 running_container_of "$d"
kill -TERM "$SERVE_PID"
RC=0
wait "$SERVE_PID" || RC=$?
check "kiln serve exits 0" test "$RC" = 0
check "D was cancelled (its report)" test "$(jget "$TMP/data/builds/$d/report.json" 'j["status"]')" = CANCELLED
check "nothing kiln made is left on the engine" nothing_of

# ---------------------------------------------------------------------------
echo "# kill -9 of kiln serve: the next start removes what its build left"
start_serve --max-builds 2 --executor "$KX"
OUR_PIDS+=("$SERVE_PID")
k=$(run_trigger img '{"branch": "master", "substitutions": {"_GATE": "never", "_TAG": "K"}}')
check "build K's container runs" wait_for 300 running_container_of "$k"
kill -9 "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
check "the killed server left K's container" running_container_of "$k"
start_serve --max-builds 2 --executor "$KX"
OUR_PIDS+=("$SERVE_PID")
check "the next start says it removed them" has_line "$TMP/serve.log" "left by builds no longer running"
check "nothing of K is left" nothing_of "$k"
check "K is INTERNAL_ERROR in the history" test "$(bstatus "$k")" = INTERNAL_ERROR
kill -TERM "$SERVE_PID"
RC=0
wait "$SERVE_PID" || RC=$?
check "kiln serve exits 0" test "$RC" = 0
check "nothing kiln made is left on the engine" nothing_of

finish
