#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve killed with SIGKILL mid-build, then started again (issue 12):
# the build that was WORKING becomes INTERNAL_ERROR ("cut off"), the one
# that was QUEUED runs, finished ones are kept.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
make_repo
start_serve --max-builds 1

done_id=$(run_trigger app-master '{"branch": "master"}')
check "a first build finishes" wait_status 120 "$done_id" SUCCESS FAILURE
gate=$TMP/gate
a=$(run_trigger app-master "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate\"}}")
b=$(run_trigger app-master '{"branch": "master"}')
check "the second build is WORKING" wait_status 120 "$a" WORKING
check "the third is QUEUED" test "$(bstatus "$b")" = QUEUED

kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
start_serve --max-builds 1 --grace 1s --kill-grace 1s
check "after the restart the cut-off build is INTERNAL_ERROR" test "$(bstatus "$a")" = INTERNAL_ERROR
check "... with a reason that says so" grep -q "cut off" <<<"$(api GET "/api/builds/$a" | jq_ 'j["statusDetail"]')"
check "the queued build runs" wait_status 120 "$b" SUCCESS FAILURE INTERNAL_ERROR
check "... and succeeds" test "$(bstatus "$b")" = SUCCESS
check "the finished build is kept" test "$(bstatus "$done_id")" = SUCCESS
check "the restart says what it found" grep -q "1 build was cut off" "$TMP/serve.log"
touch "$gate"   # the orphaned step of the killed server ends

# SIGTERM while a build runs past --grace: it is cancelled; the queued one
# stays QUEUED in the history and runs at the next start.
gate2=$TMP/gate2
c=$(run_trigger app-master "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate2\"}}")
d=$(run_trigger app-master '{"branch": "master"}')
check "a build is WORKING when SIGTERM comes" wait_status 120 "$c" WORKING
check "another is QUEUED" test "$(bstatus "$d")" = QUEUED
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
check "kiln serve exits 0 on SIGTERM, after the grace period" test "$rc" = 0
check "the grace period ran out" grep -q "grace period over: cancelling 1 running build" "$TMP/serve.log"
start_serve --max-builds 1
check "the build cut by the grace period is CANCELLED" test "$(bstatus "$c")" = CANCELLED
check "... because kiln serve stopped" test "$(api GET "/api/builds/$c" | jq_ 'j["statusDetail"]')" = "kiln serve stopped"
check "the build queued at SIGTERM runs after the restart" wait_status 120 "$d" SUCCESS FAILURE INTERNAL_ERROR
check "... and succeeds" test "$(bstatus "$d")" = SUCCESS
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
check "kiln serve exits 0 on SIGTERM" test "$rc" = 0
check "no step process is left" no_survivors
finish
