#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve (issue 12): the HTTP API over real HTTP on 127.0.0.1, builds
# of a real bare repository, the queue, cancel, the token, SIGTERM, and
# the `kiln builds` / `kiln trigger --server` client. Waits are polls with
# generous deadlines; order and states are checked, never how fast.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
make_repo
start_serve --max-builds 1
master=$(git -C "$TMP/app.git" rev-parse master)

# A build that succeeds: status, per-step results, logs, report.
id=$(run_trigger app-master '{"branch": "master", "substitutions": {"_FAIL": "0"}}')
check "POST :run answers 201" test "$(code)" = 201
check "the build succeeds" wait_status 120 "$id" SUCCESS FAILURE INTERNAL_ERROR
check "... as SUCCESS" test "$(bstatus "$id")" = SUCCESS
api GET "/api/builds/$id" >"$TMP/b1.json"
check "GET /api/builds/ID has the commit" test "$(jq_ 'j["commit"]' <"$TMP/b1.json")" = "$master"
check "GET /api/builds/ID has per-step results" \
    test "$(jq_ '",".join(s["key"]+":"+s["status"] for s in j["steps"])' <"$TMP/b1.json")" = "wait:SUCCESS,check:SUCCESS"
check "the report is under DATA/builds/ID" test -s "$TMP/data/builds/$id/report.json"
check "the report says SUCCESS" test "$(jget "$TMP/data/builds/$id/report.json" 'j["status"]')" = SUCCESS
check "the triggered build got BRANCH_NAME, SHORT_SHA, TRIGGER_NAME" \
    grep -q "building master at ${master:0:7} (app-master)" "$TMP/data/builds/$id/logs/wait.log"
check "each step has its log file" test -s "$TMP/data/builds/$id/logs/check.log"

# A failing build.
fid=$(run_trigger app-master '{"branch": "master", "substitutions": {"_FAIL": "1"}}')
check "a failing build ends" wait_status 120 "$fid" SUCCESS FAILURE INTERNAL_ERROR
check "... as FAILURE" test "$(bstatus "$fid")" = FAILURE
check "its failing step is FAILURE with exit code 3" \
    test "$(api GET "/api/builds/$fid" | jq_ '[(s["status"], s["exit_code"]) for s in j["steps"] if s["key"]=="check"][0]')" = "('FAILURE', 3)"

# An invalid pipeline: FAILURE, nothing ran, the errors kept.
iid=$(run_trigger app-broken '{"branch": "master"}')
check "a build of an invalid pipeline ends" wait_status 120 "$iid" SUCCESS FAILURE INTERNAL_ERROR
check "... FAILURE, saying the pipeline is invalid" \
    grep -q "^FAILURE invalid pipeline broken.yaml" <<<"$(api GET "/api/builds/$iid" | jq_ 'j["status"]+" "+j["statusDetail"]')"
check "... its errors are in DATA/builds/ID/validate.txt" grep -q "bogus" "$TMP/data/builds/$iid/validate.txt"

# The token: writes need it, reads from loopback do not.
api_anon POST "/api/triggers/app-master:run" '{"branch": "master"}' >/dev/null
check "POST without a token: 401" test "$(code)" = 401
curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer wrong" -d '{"branch":"master"}' \
    "$BASE/api/triggers/app-master:run" >"$TMP/code"
check "POST with a wrong token: 401" test "$(cat "$TMP/code")" = 401
api_anon POST "/api/builds/$id:cancel" >/dev/null
check "cancel without a token: 401" test "$(code)" = 401
api_anon GET "/api/builds" >/dev/null
check "GET /api/builds from loopback needs no token" test "$(code)" = 200
api POST "/api/triggers/nope:run" '{"branch": "master"}' >/dev/null
check "an unknown trigger: 404" test "$(code)" = 404
api POST "/api/triggers/app-master:run" '{"branch": ' >/dev/null
check "a malformed body: 400" test "$(code)" = 400
api POST "/api/triggers/app-feature:run" '{"branch": "feature"}' >/dev/null
check "a trigger naming its repository by name only cannot run by hand: 400" test "$(code)" = 400

# The queue: --max-builds 1, the first waits for a gate file; the second
# stays QUEUED until the first ends, then runs.
gate=$TMP/gate1
a=$(run_trigger app-master "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate\"}}")
b=$(run_trigger app-master '{"branch": "master"}')
check "the first build is WORKING" wait_status 120 "$a" WORKING
check "the second is QUEUED while the first runs" test "$(bstatus "$b")" = QUEUED
api GET "/api/builds?status=QUEUED" >"$TMP/q.json"
check "?status=QUEUED lists it" test "$(jq_ '[x["id"] for x in j["builds"]]' <"$TMP/q.json")" = "['$b']"
touch "$gate"
check "the first ends SUCCESS" wait_status 120 "$a" SUCCESS FAILURE
check "then the second runs and succeeds" wait_status 120 "$b" SUCCESS FAILURE
check "... SUCCESS" test "$(bstatus "$b")" = SUCCESS
started_a=$(api GET "/api/builds/$a" | jq_ 'j["finishTime"]')
started_b=$(api GET "/api/builds/$b" | jq_ 'j["startTime"]')
check "the second started after the first finished" test "$started_b" \> "$started_a"

# Cancel: a WORKING build and a QUEUED one.
gate=$TMP/gate2
c=$(run_trigger app-master "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate\"}}")
d=$(run_trigger app-master '{"branch": "master"}')
check "the build to cancel is WORKING" wait_status 120 "$c" WORKING
api POST "/api/builds/$d:cancel" >/dev/null
check "cancel a QUEUED build: 200" test "$(code)" = 200
check "... it is CANCELLED" test "$(bstatus "$d")" = CANCELLED
api POST "/api/builds/$c:cancel" >/dev/null
check "cancel a WORKING build: 200" test "$(code)" = 200
check "... it ends CANCELLED" wait_status 120 "$c" CANCELLED SUCCESS FAILURE
check "... CANCELLED" test "$(bstatus "$c")" = CANCELLED
api POST "/api/builds/$c:cancel" >/dev/null
check "cancel an ended build: 409" test "$(code)" = 409
api POST "/api/builds/no-such-build:cancel" >/dev/null
check "cancel an unknown build: 404" test "$(code)" = 404
touch "$gate"

# Listing: newest first, filters, cursor paging.
api GET "/api/builds?pageSize=2" >"$TMP/p1.json"
check "pageSize=2: two builds, newest first" test "$(jq_ '[x["id"] for x in j["builds"]]' <"$TMP/p1.json")" = "['$d', '$c']"
cursor=$(jq_ 'j["nextCursor"]' <"$TMP/p1.json")
api GET "/api/builds?pageSize=2&cursor=$cursor" >"$TMP/p2.json"
check "the next page goes on where the first stopped" test "$(jq_ '[x["id"] for x in j["builds"]]' <"$TMP/p2.json")" = "['$b', '$a']"
check "?status=FAILURE" test "$(api GET "/api/builds?status=FAILURE" | jq_ '[x["id"] for x in j["builds"]]')" = "['$iid', '$fid']"
check "?trigger=other-master lists none" test "$(api GET "/api/builds?trigger=other-master" | jq_ 'len(j["builds"])')" = 0
check "?branch=master lists all seven" test "$(api GET "/api/builds?branch=master" | jq_ 'len(j["builds"])')" = 7

# Metrics (Prometheus text), open on loopback.
curl -s "$BASE/metrics" >"$TMP/metrics.txt"
check "/metrics counts the builds by status" grep -q '^kiln_builds{status="FAILURE"} 2$' "$TMP/metrics.txt"
check "/metrics has the slots" grep -q '^kiln_build_slots 1$' "$TMP/metrics.txt"
check "/metrics: a histogram of the finished builds' durations (cumulative, +Inf = count >= 2)" python3 -c '
import re, sys
t = open(sys.argv[1]).read()
b = [int(v) for v in re.findall(r"^kiln_build_duration_seconds_bucket\{le=\"[^\"]+\"\} (\d+)$", t, re.M)]
c = int(re.search(r"^kiln_build_duration_seconds_count (\d+)$", t, re.M).group(1))
assert "# TYPE kiln_build_duration_seconds histogram" in t
assert len(b) == 11 and b == sorted(b) and b[-1] == c and c >= 2, (b, c)
assert float(re.search(r"^kiln_build_duration_seconds_sum (\S+)$", t, re.M).group(1)) >= 0' "$TMP/metrics.txt"

# The client.
"$KILN" builds list --server "$BASE" >"$TMP/list.txt" 2>&1
check "kiln builds list shows the builds" grep -q "^$fid *FAILURE *app-master *master" "$TMP/list.txt"
"$KILN" builds show "$id" --server "$BASE" >"$TMP/show.txt" 2>&1
check "kiln builds show has the steps" grep -q "^check *SUCCESS *0" "$TMP/show.txt"
"$KILN" builds log "$id" --server "$BASE" >"$TMP/logs.txt" 2>&1
check "kiln builds log ID lists the steps with logs" test "$(sort "$TMP/logs.txt" | tr '\n' ' ')" = "check wait "
"$KILN" builds log "$id" wait --server "$BASE" >"$TMP/wait.txt" 2>&1
check "kiln builds log ID STEP prints the step's log" grep -q "building master at ${master:0:7}" "$TMP/wait.txt"
api GET "/api/builds/$id/logs/nope" >/dev/null
check "the log of a step that has none: 404" test "$(code)" = 404
rc=0; "$KILN" builds cancel "$id" --server "$BASE" >"$TMP/cancel.txt" 2>&1 || rc=$?
check "kiln builds cancel without KILN_TOKEN fails (401)" test "$rc" = 1 -a -n "$(grep 401 "$TMP/cancel.txt")"
rc=0; KILN_TOKEN=$TOKEN "$KILN" trigger --server "$BASE" app-master --branch master --wait >"$TMP/trig.txt" 2>&1 || rc=$?
check "kiln trigger --server NAME --wait succeeds" test "$rc" = 0
check "... and shows the build" grep -q "^status *SUCCESS" "$TMP/trig.txt"
rc=0; KILN_TOKEN=$TOKEN "$KILN" trigger --server "$BASE" app-master --branch master \
    --substitutions _FAIL=2 --wait >"$TMP/trig2.txt" 2>&1 || rc=$?
check "kiln trigger --server --wait of a failing build exits 1" test "$rc" = 1

# SIGTERM: no more work; a running build may end within the grace period.
gate=$TMP/gate3
e=$(run_trigger app-master "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate\"}}")
check "a build runs when SIGTERM comes" wait_status 120 "$e" WORKING
kill -TERM "$SERVE_PID"
check "the server stops listening" wait_for 60 sh -c "! curl -s -o /dev/null '$BASE/api/builds'"
check "the server has not exited while the build runs" kill -0 "$SERVE_PID"
touch "$gate"
rc=0; wait "$SERVE_PID" || rc=$?
check "once it ended, kiln serve exits 0" test "$rc" = 0
check "the build ended SUCCESS (within the grace period)" \
    test "$(jget "$TMP/data/builds/$e/report.json" 'j["status"]')" = SUCCESS
check "the log says so" grep -q "taking no more work" "$TMP/serve.log"
check "no step process is left" no_survivors
finish
