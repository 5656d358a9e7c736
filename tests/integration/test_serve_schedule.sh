#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's schedules (issue 12) on an injected clock: KILN_TEST_CLOCK
# names a file holding "now", which the test rewrites; no test waits for
# a real minute. A weekly trigger in Europe/Paris, an every-15-minutes one
# naming its repository by name (--repos), a jump of the clock (one run,
# not one per missed tick), a week of downtime (the missed runs start once
# at startup, and only once), and the refusals.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
make_repo
master=$(git -C "$TMP/app.git" rev-parse master)
feature=$(git -C "$TMP/app.git" rev-parse feature)
cat >"$TMP/triggers.yaml" <<YAML
triggers:
- name: weekly
  repo: $TMP/app.git
  branch: ^master\$
  schedule: "0 3 * * MON"          # 2026-12-07 is a Monday; Paris is UTC+1 then
  timeZone: Europe/Paris
- name: quarter
  repo: app                        # by name: under --repos
  branch: ^feature\$
  schedule: "*/15 * * * *"
YAML
export KILN_TEST_CLOCK=$TMP/clock
setclock() { echo "$1" >"$TMP/clock.tmp" && mv "$TMP/clock.tmp" "$TMP/clock"; }
count() {  # count TRIGGER: its builds in the history
    curl -s "$BASE/api/builds?trigger=$1&pageSize=100" | jq_ 'len(j["builds"])'
}
count_is() { [ "$(count "$1")" = "$2" ]; }

"$KILN" trigger --list --triggers "$TMP/triggers.yaml" >"$TMP/list.txt"
check "kiln trigger --list shows the schedule and its time zone" \
    grep -Eq '^weekly .*0 3 \* \* MON Europe/Paris$' "$TMP/list.txt"

setclock 2026-12-07T01:58:00Z      # 02:58 in Paris
start_serve --repos "$TMP"
check "the next run is said in the trigger's time zone" \
    wait_for 30 has_line "$TMP/serve.log" "schedule: trigger weekly (0 3 * * MON): next run 2026-12-07 03:00 Europe/Paris"
check "GET /api/triggers shows the schedule, its time zone and the next run (UTC)" \
    test "$(curl -s "$BASE/api/triggers" | jq_ '[(t["schedule"], t["timeZone"], t["nextRun"][:19]) for t in j["triggers"] if t["name"]=="weekly"][0]')" = \
    "('0 3 * * MON', 'Europe/Paris', '2026-12-07T02:00:00')"
check "the first start runs nothing (nothing was missed)" test "$(count weekly)/$(count quarter)" = 0/0

setclock 2026-12-07T01:59:30Z
setclock 2026-12-07T02:00:00Z      # 03:00 in Paris
check "at 03:00 Paris the weekly build is queued" wait_for 60 count_is weekly 1
check "... and the every-15-minutes one (minute 0)" wait_for 60 count_is quarter 1
wid=$(curl -s "$BASE/api/builds?trigger=weekly" | jq_ 'j["builds"][0]["id"]')
check "the weekly build succeeds" wait_status 120 "$wid" SUCCESS FAILURE INTERNAL_ERROR
check "... SUCCESS" test "$(bstatus "$wid")" = SUCCESS
check "... of master's commit" test "$(api GET "/api/builds/$wid" | jq_ 'j["commit"]')" = "$master"
check "... started by the schedule" test "$(api GET "/api/builds/$wid" | jq_ 'j["source"]')" = schedule
check "... with BRANCH_NAME and TRIGGER_NAME" \
    grep -q "building master at ${master:0:7} (weekly)" "$TMP/data/builds/$wid/logs/wait.log"
qid=$(curl -s "$BASE/api/builds?trigger=quarter" | jq_ 'j["builds"][0]["id"]')
check "the by-name repository was found under --repos and built" wait_status 120 "$qid" SUCCESS FAILURE
check "... at feature's commit" test "$(api GET "/api/builds/$qid" | jq_ 'j["commit"]')" = "$feature"

setclock 2026-12-07T02:07:00Z
setclock 2026-12-07T02:15:00Z
check "at :15 the every-15-minutes trigger runs again" wait_for 60 count_is quarter 2
check "... and the weekly one did not" test "$(count weekly)" = 1

# The clock jumps two hours: one run, not eight.
setclock 2026-12-07T04:20:00Z
check "after a jump of the clock it runs" wait_for 60 count_is quarter 3
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
check "SIGTERM: exit 0" test $? = 0
check "... once for the whole jump (the server logged one run)" \
    test "$(grep -c 'schedule: trigger quarter, scheduled run of 2026-12-07 02:30' "$TMP/serve.log")" = 1
check "... and nothing for 02:45 ... 04:15" \
    test "$(grep -c 'schedule: trigger quarter, scheduled run' "$TMP/serve.log")" = 3

# A week down: Monday 2026-12-14 03:00 Paris passed. Each trigger's missed
# run starts once at startup.
setclock 2026-12-14T05:00:00Z
start_serve --repos "$TMP"
check "after downtime the missed weekly run started once" test "$(count weekly)" = 2
check "... and the missed every-15-minutes run once" test "$(count quarter)" = 4
check "... the log says it was missed" \
    has_line "$TMP/serve.log" "schedule: trigger weekly, missed (kiln serve was down) run of 2026-12-14 03:00 Europe/Paris"
check "the next weekly run is a week later" \
    has_line "$TMP/serve.log" "schedule: trigger weekly (0 3 * * MON): next run 2026-12-21 03:00 Europe/Paris"
for id in $(curl -s "$BASE/api/builds?pageSize=100" | jq_ '" ".join(b["id"] for b in j["builds"])'); do
    wait_status 120 "$id" SUCCESS FAILURE INTERNAL_ERROR CANCELLED
done
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true
# Started again at the same time: the missed runs were recorded, none again.
start_serve --repos "$TMP"
check "started again: no missed run twice" test "$(count weekly)/$(count quarter)" = 2/4
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true

# Refusals: a time zone that does not exist, a schedule that is not cron.
cat >"$TMP/bad.yaml" <<'YAML'
triggers:
- name: bad-zone
  repo: /x.git
  branch: ^main$
  schedule: "0 3 * * MON"
  timeZone: Mars/Olympus
- name: bad-cron
  repo: /x.git
  branch: ^main$
  schedule: "0 3 * * FUN"
YAML
rc=$(run_kiln "$TMP/bad.out" serve --triggers "$TMP/bad.yaml" --listen 127.0.0.1:1 --data "$TMP/bad-data")
check "a bad triggers file: exit 2" test "$rc" = 2
check "an unknown time zone names file:line:col" has_line "$TMP/bad.out" "bad.yaml:6:13: error: timeZone: unknown time zone 'Mars/Olympus'"
check "a bad schedule names the field" has_line "$TMP/bad.out" "bad.yaml:10:13: error: schedule: field 5 (day of week) 'FUN' is not valid"
# A schedule builds one branch: a pattern is an error of the file.
cat >"$TMP/fuzzy.yaml" <<'YAML'
triggers:
- name: fuzzy
  repo: /x.git
  branch: ^(master|main)$
  schedule: "@daily"
- name: nobranch
  repo: /x.git
  schedule: "@daily"
- name: pushes-only
  repo: /x.git
  branch: ^release-.*$
YAML
rc=$(run_kiln "$TMP/fuzzy.out" serve --triggers "$TMP/fuzzy.yaml" --listen 127.0.0.1:1 --data "$TMP/bad-data")
check "a scheduled trigger whose branch is a pattern: exit 2" test "$rc" = 2
check "... naming file:line:col and the fix" has_line "$TMP/fuzzy.out" \
    "fuzzy.yaml:4:11: error: trigger 'fuzzy': a schedule builds one branch, but '^(master|main)\$' is a pattern; give it literally, such as ^main\$ (one trigger per branch to build)"
check "a scheduled trigger without a branch: its own error" has_line "$TMP/fuzzy.out" \
    "fuzzy.yaml:8:13: error: trigger 'nobranch': a schedule needs the branch (or tag) to build"
check "a pattern without a schedule is fine" lacks_line "$TMP/fuzzy.out" "pushes-only"
finish
