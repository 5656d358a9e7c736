# SPDX-License-Identifier: MIT
# Helpers shared by the integration tests (sourced; not a test itself).
#
# Every test runs the real kiln binary ($KILN, set by ctest) in a fresh
# temporary directory and asserts what a user sees: the exit code, console
# lines, log files and report.json. Checks record their result and go on;
# `finish` prints the tally and fails the script when any check failed.
set -euo pipefail

: "${KILN:?KILN must name the kiln binary (ctest sets it)}"
: "${KILN_SOURCE_DIR:?}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-itest.XXXXXX")
# A marker unique to this run, put into the command lines of long-running
# step processes, so that survivors can be found with pgrep -f.
MARK=kilnmark$$x$RANDOM
FAKE_PIDS=()
cleanup() {
    local p
    for p in "${FAKE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${FAKE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    pkill -KILL -f "$MARK" 2>/dev/null || true
    if [ -n "${KILN_TEST_KEEP:-}" ]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
cd "$TMP"
# Remote sinks spool under $XDG_STATE_HOME/kiln/spool when there is no
# --log-dir: each test its own, not the user's (nor another test's).
export XDG_STATE_HOME=$TMP/state
FAILS=0
PASSES=0

pass() { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: record the result, keep going
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
has_line() { grep -qF -- "$2" "$1"; }
lacks_line() { ! grep -qF -- "$2" "$1"; }
count_lines() { grep -cF -- "$2" "$1" || true; }
# jget FILE EXPR: print a value from a JSON file; EXPR is Python over `j`
jget() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# status REPORT ID: the status of step ID (main or finally) in a report
status() {
    python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
print(next((s["status"] for s in j["steps"]+j["finally"] if s["key"]==sys.argv[2]), "ABSENT"))' "$1" "$2"
}
# field REPORT ID KEY: another field of step ID ("None" when null)
field() {
    python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
s=next(s for s in j["steps"]+j["finally"] if s["key"]==sys.argv[2])
print(s.get(sys.argv[3]))' "$1" "$2" "$3"
}
# run_kiln OUT ARGS...: run kiln, stdout+stderr to OUT, print the exit code
run_kiln() {
    local out=$1; shift
    local rc=0
    "$KILN" "$@" >"$out" 2>&1 || rc=$?
    echo "$rc"
}
# A copy of sleep whose path carries the marker: `$SLEEP 30` in a step is a
# process that pgrep -f "$MARK" finds.
SLEEP=$TMP/sleep-$MARK
ln -s "$(command -v sleep)" "$SLEEP"
# alive: processes carrying the marker that have not exited (zombies left
# for init to reap do not count)
alive() { ps -eo stat=,args= | awk -v m="$MARK" '$1 !~ /^Z/ && index($0, m)' | grep -v awk || true; }
no_survivors() {
    local left
    left=$(alive)
    if [ -n "$left" ]; then
        echo "  survivors: $left"
        return 1
    fi
}
# wait_for TIMEOUT_S COMMAND...: poll until COMMAND succeeds. TIMEOUT_S
# only catches hangs: 60 s or more, never a check that something was quick.
wait_for() {
    local deadline=$(($(date +%s) + $1)); shift
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}
# start_fake DIR ARGS...: python3 $FAKE (a server of tests/fakes/) on a free
# port, logging to DIR/requests.jsonl; sets PORT and FAKE_PID. The servers
# are stopped when the test ends.
start_fake() {
    local dir=$1; shift
    mkdir -p "$dir"
    python3 "$FAKE" --port 0 --port-file "$dir/port" --log "$dir/requests.jsonl" "$@" >"$dir/server.out" 2>&1 &
    FAKE_PID=$!
    FAKE_PIDS+=("$FAKE_PID")
    if ! wait_for 60 test -s "$dir/port"; then
        echo "FAIL - the fake did not start:"; sed 's/^/  /' "$dir/server.out"
        exit 1
    fi
    PORT=$(cat "$dir/port")
}
# stop_fake PID: SIGTERM; succeeds when the server exits 0
stop_fake() { local rc=0; kill -TERM "$1"; wait "$1" || rc=$?; [ "$rc" = 0 ]; }
# A test that cannot run here at all ends with skip_test: it prints
# "SKIP: REASON" and exits 77, which ctest counts as skipped (SKIP_RETURN_CODE
# in tests/CMakeLists.txt). A part of a test that cannot run prints
# "skip - REASON" and the rest goes on.
SKIP_CODE=77
skip_test() { echo "SKIP: $*"; exit "$SKIP_CODE"; }
# need_shared PATH: sets SHARED to the project's ../shared directory
# ($KILN_SHARED_DIR), which must hold PATH. A clone of the repository alone
# has no ../shared: the test is skipped, saying so, unless
# KILN_REQUIRE_SHARED=1 (set by .ci/run), which makes that a failure.
need_shared() {
    SHARED=${KILN_SHARED_DIR:-$KILN_SOURCE_DIR/../shared}
    [ -e "$SHARED/$1" ] && return 0
    if [ "${KILN_REQUIRE_SHARED:-0}" = 1 ]; then
        echo "FAIL - $SHARED/$1 is missing (KILN_REQUIRE_SHARED=1: the project's ../shared is required)"
        exit 1
    fi
    skip_test "$SHARED/$1 is missing (the project's ../shared is not beside this clone; KILN_REQUIRE_SHARED=1 makes this a failure)"
}
# The steps' intervals of a report (the DAG tests):
# times REPORT: "key start end" per step, in seconds since the epoch
times() {
    python3 -c 'import json,sys,datetime
def t(s): return datetime.datetime.fromisoformat(s.rstrip("Z")).timestamp()
for s in json.load(open(sys.argv[1]))["steps"]:
    if "timing" in s: print(s["key"], t(s["timing"]["startTime"]), t(s["timing"]["endTime"]))' "$1"
}
# before REPORT A B: step A ended no later than step B started
before() {
    times "$1" | awk -v a="$2" -v b="$3" '$1==a{ae=$3} $1==b{bs=$2} END{exit !(ae!="" && bs!="" && ae<=bs)}'
}
# overlap REPORT A B: the two steps' intervals intersect
overlap() {
    times "$1" | awk -v a="$2" -v b="$3" '$1==a{as=$2;ae=$3} $1==b{bs=$2;be=$3} END{exit !(as<be && bs<ae)}'
}
# serial REPORT: no two steps' intervals intersect
serial() {
    times "$1" | sort -k2,2n | awk 'NR>1 && $2<prev{bad=1} {prev=$3} END{exit bad}'
}
# diamond_checks REPORT CONSOLE: tests/data/dag/diamond.yaml ran as a
# diamond (test_dag.sh; test_k8s_story.sh as Pods)
diamond_checks() {
    check "diamond: every step SUCCESS" \
        test "$(status "$1" a)$(status "$1" b)$(status "$1" c)$(status "$1" d)" = SUCCESSSUCCESSSUCCESSSUCCESS
    check "diamond: b and c overlap in the report" overlap "$1" b c
    check "diamond: a before b" before "$1" a b
    check "diamond: c before d" before "$1" c d
    check "diamond: b before d" before "$1" b d
    check "diamond: console shows d's output" has_line "$2" "[d] d"
}

finish() {
    echo "# $PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}
