#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve (issue 12): POST /api/builds/ID:retry and `kiln builds retry`,
# a trigger's cancelPrevious, retention (--keep-builds, --keep-days: rows
# and directories gone, running and queued builds kept), `kiln builds logs
# ID --step S` (and the older `log ID STEP`). Real HTTP, a real bare
# repository; waits are polls.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
make_repo
cat >>"$TMP/triggers.yaml" <<YAML
- name: app-latest
  repo: $TMP/app.git
  branch: ^master\$
  cancelPrevious: true
YAML
start_serve --max-builds 1 --keep-builds 3
master=$(git -C "$TMP/app.git" rev-parse master)

# Retry: the same trigger, commit and asked-for substitutions, a new id.
f=$(run_trigger app-master '{"branch": "master", "substitutions": {"_FAIL": "4"}}')
check "a failing build ends FAILURE" wait_status 120 "$f" FAILURE SUCCESS INTERNAL_ERROR
check "... FAILURE" test "$(bstatus "$f")" = FAILURE
api POST "/api/builds/$f:retry" >"$TMP/r.json"
check "POST :retry answers 201" test "$(code)" = 201
r=$(jq_ 'j["id"]' <"$TMP/r.json")
check "... with a new build id" test -n "$r" -a "$r" != "$f"
check "... the same trigger" test "$(jq_ 'j["trigger"]' <"$TMP/r.json")" = app-master
check "... the same substitutions" test "$(jq_ 'j["substitutions"]' <"$TMP/r.json")" = "{'_FAIL': '4'}"
check "... started as a retry" test "$(jq_ 'j["source"]' <"$TMP/r.json")" = retry
check "the retry ends (FAILURE again: same inputs)" wait_status 120 "$r" FAILURE SUCCESS INTERNAL_ERROR
check "... of the same commit" test "$(api GET "/api/builds/$r" | jq_ 'j["commit"]')" = "$master"
check "... FAILURE with exit code 4 again" grep -q "fail=4" "$TMP/data/builds/$r/logs/check.log"
api_anon POST "/api/builds/$f:retry" >/dev/null
check "retry without a token: 401" test "$(code)" = 401
api POST "/api/builds/nope:retry" >/dev/null
check "retry of an unknown build: 404" test "$(code)" = 404
api GET "/api/builds/$f:retry" >/dev/null
check "GET :retry: 405" test "$(code)" = 405
out=$(KILN_TOKEN=$TOKEN "$KILN" builds retry "$f" --server "$BASE" 2>&1)
check "kiln builds retry ID says the new build" grep -Eq "^kiln: build [0-9a-f-]{36}: a retry of $f \((QUEUED|WORKING)\)$" <<<"$out"
r2=$(sed -E 's/^kiln: build ([0-9a-f-]{36}).*/\1/' <<<"$out")
check "... which runs" wait_status 120 "$r2" FAILURE SUCCESS

# kiln builds logs ID [--step S]; log ID STEP still works.
"$KILN" builds logs "$r" --server "$BASE" >"$TMP/logs.txt" 2>&1
check "kiln builds logs ID lists the steps with logs" test "$(sort "$TMP/logs.txt" | tr '\n' ' ')" = "check wait "
"$KILN" builds logs "$r" --step check --server "$BASE" >"$TMP/check.txt" 2>&1
check "kiln builds logs ID --step S prints the step's log" grep -q "^fail=4" "$TMP/check.txt"
"$KILN" builds log "$r" check --server "$BASE" >"$TMP/check2.txt" 2>&1
check "kiln builds log ID STEP (the older spelling) too" cmp -s "$TMP/check.txt" "$TMP/check2.txt"
rc=0; "$KILN" builds show "$r" --step check --server "$BASE" >/dev/null 2>&1 || rc=$?
check "--step with another verb: usage error (2)" test "$rc" = 2

# cancelPrevious: a newer build of the same branch cancels the WORKING
# one and the QUEUED one; another trigger's build is left alone.
gate=$TMP/gate1
a=$(run_trigger app-latest "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate\"}}")
check "the first app-latest build is WORKING" wait_status 120 "$a" WORKING
gate2=$TMP/gate2   # holds the other trigger's build, so that b waits QUEUED
o=$(run_trigger app-master "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate2\"}}")
b=$(run_trigger app-latest '{"branch": "master"}')
check "app-latest's second build cancels the WORKING first" wait_status 120 "$a" CANCELLED SUCCESS FAILURE
check "... CANCELLED, saying why" test "$(api GET "/api/builds/$a" | jq_ 'j["status"]+" "+j["statusDetail"]')" = \
    "CANCELLED cancelled: a newer build $b of refs/heads/master (cancelPrevious)"
check "the other trigger's build runs" wait_status 120 "$o" WORKING
check "app-latest's second waits QUEUED behind it" test "$(bstatus "$b")" = QUEUED
c=$(run_trigger app-latest '{"branch": "master"}')
check "a third cancels the QUEUED second" wait_status 120 "$b" CANCELLED SUCCESS FAILURE
check "... CANCELLED" test "$(bstatus "$b")" = CANCELLED
touch "$gate2"
check "the other trigger's build is not cancelled" wait_status 120 "$o" SUCCESS FAILURE CANCELLED
check "... SUCCESS" test "$(bstatus "$o")" = SUCCESS
check "the newest app-latest build runs and succeeds" wait_status 120 "$c" SUCCESS FAILURE CANCELLED
check "... SUCCESS" test "$(bstatus "$c")" = SUCCESS
touch "$gate"

# Retention: --keep-builds 3: of the finished builds only the newest three
# remain, rows and directories.
all=$(api GET "/api/builds?pageSize=100")
check "--keep-builds 3: three builds left in the history" test "$(jq_ 'len(j["builds"])' <<<"$all")" = 3
check "... the newest three" test "$(jq_ '[b["id"] for b in j["builds"]]' <<<"$all")" = "['$c', '$b', '$o']"
check "... their directories kept" test -d "$TMP/data/builds/$c" -a -d "$TMP/data/builds/$o"
check "the older builds' directories are removed" wait_for 60 sh -c "[ ! -e '$TMP/data/builds/$f' ] && [ ! -e '$TMP/data/builds/$r' ] && [ ! -e '$TMP/data/builds/$a' ]"
api GET "/api/builds/$f" >/dev/null
check "... and GET of a removed build: 404" test "$(code)" = 404
check "the server said what it removed" has_line "$TMP/serve.log" "retention: "
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true

# --keep-days 2: builds that finished three days ago go at startup.
python3 - "$TMP/data/kiln.db" "$o" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
old = int((time.time() - 3 * 86400) * 1e6)
db.execute("UPDATE builds SET finish_us = ?, create_us = ? WHERE id = ?", (old, old, sys.argv[2]))
db.commit()
PY
start_serve --keep-days 2
check "--keep-days 2: the build finished three days ago is gone" test "$(api GET "/api/builds?pageSize=100" | jq_ '[b["id"] for b in j["builds"]]')" = "['$c', '$b']"
check "... and its directory" wait_for 60 sh -c "[ ! -e '$TMP/data/builds/$o' ]"
check "... the recent ones stay" test -d "$TMP/data/builds/$c"
rc=$(run_kiln "$TMP/bad.out" serve --triggers "$TMP/triggers.yaml" --keep-builds 0)
check "--keep-builds 0: usage error (2)" test "$rc" = 2
check "... saying what it expected" has_line "$TMP/bad.out" "--keep-builds: expected a positive number, got '0'"
finish
