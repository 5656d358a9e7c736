#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's retention on the serve clock (issue 12): --keep-days counts
# from KILN_TEST_CLOCK's time (the schedules' clock) and runs every hour of
# that clock, not only at startup and after a build; a build removed by
# retention takes its sub-builds' directories (DATA/builds/SUB, listed in
# DATA/builds/ID/subbuilds) with it; GitHub deliveries are remembered 8
# days (or --keep-days when longer), then forgotten. Real HTTP with curl,
# a real bare repository, deliveries signed with HMAC-SHA256 as GitHub's.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
source "$(dirname "$0")/serve_web_lib.sh"
make_log_repo
master=$(git -C "$TMP/app.git" rev-parse master)
export KILN_TEST_CLOCK=$TMP/clock
now=$(date +%s)
setclock() { echo "$1" >"$TMP/clock.tmp" && mv "$TMP/clock.tmp" "$TMP/clock"; }
setclock "$now"
start_serve --max-builds 2 --keep-days 2

# hook EVENT DELIVERY FILE: POST FILE to /hooks/github, signed; code in $TMP/code
hook() {
    local sig
    sig=$(python3 -c 'import hmac,hashlib,sys; print("sha256="+hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$SECRET" "$3")
    curl -s -o "$TMP/resp.json" -w '%{http_code}' -X POST -H "X-GitHub-Event: $1" -H "X-GitHub-Delivery: $2" \
        -H "X-Hub-Signature-256: $sig" -H 'Content-Type: application/json' --data-binary "@$3" \
        "$BASE/hooks/github" >"$TMP/code"
    cat "$TMP/resp.json"
}
deliveries() { curl -s "$BASE/metrics" | awk '$1 == "kiln_webhook_deliveries" {print $2}'; }
nbuilds() { curl -s "$BASE/api/builds?pageSize=100" | jq_ 'len(j["builds"])'; }

# A build with a sub-build: both have directories under DATA/builds.
nid=$(run_trigger notes '{"branch": "master"}')
check "the build with a sub-build succeeds" wait_status 120 "$nid" SUCCESS FAILURE
check "... SUCCESS" test "$(bstatus "$nid")" = SUCCESS
sub=$(api GET "/api/builds/$nid" | jq_ '[s for s in j["steps"] if s["key"]=="child"][0]["builds"][0]["id"]')
check "the sub-build's logs are at DATA/builds/SUB" test -s "$TMP/data/builds/$sub/logs/c2.log"
check "the build lists its sub-build in DATA/builds/ID/subbuilds" test "$(cat "$TMP/data/builds/$nid/subbuilds")" = "$sub"

# A GitHub push delivery: remembered, so its redelivery starts nothing.
python3 - "$TMP/push.json" "$master" "$TMP/app.git" <<'PY'
import json, sys
out, after, url = sys.argv[1:4]
json.dump({"ref": "refs/heads/nomatch", "before": "0" * 40, "after": after, "created": False, "deleted": False,
           "repository": {"name": "app", "full_name": "someone/app", "clone_url": url},
           "commits": [{"id": after, "added": ["x"], "modified": [], "removed": []}],
           "head_commit": {"id": after}}, open(out, "w"))
PY
hook push d-old "$TMP/push.json" >/dev/null
check "a push delivery: 200" test "$(code)" = 200
check "it is remembered (metrics)" test "$(deliveries)" = 1

# A day later (the serve clock): the build is kept; three days later
# (--keep-days 2) it goes, with no new build or restart to prompt it.
setclock $((now + 86400))
sleep 1
check "a day later the build is kept" test "$(nbuilds)" = 1
setclock $((now + 3 * 86400))
check "three days later (--keep-days 2) the build is gone from the history" wait_for 60 sh -c "[ \"\$(curl -s '$BASE/api/builds?pageSize=100' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"builds\"]))')\" = 0 ]"
check "... its directory is removed" wait_for 60 test ! -e "$TMP/data/builds/$nid"
check "... and its sub-build's directory with it" wait_for 60 test ! -e "$TMP/data/builds/$sub"
check "the delivery of three days ago is still remembered" test "$(deliveries)" = 1
hook push d-old "$TMP/push.json" >/dev/null
check "... so its redelivery is ignored" test "$(jq_ 'j.get("duplicate")' <"$TMP/resp.json")" = True

# Nine days later: deliveries older than 8 days are forgotten.
setclock $((now + 9 * 86400))
check "nine days later the delivery is forgotten" wait_for 60 sh -c "[ \"\$(curl -s '$BASE/metrics' | awk '\$1 == \"kiln_webhook_deliveries\" {print \$2}')\" = 0 ]"
check "... the server said so" has_line "$TMP/serve.log" "webhook delivery older than 8 days forgotten"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true

# With --keep-days 30, deliveries are kept 30 days.
setclock $((now + 9 * 86400))
start_serve --keep-days 30
hook push d-new "$TMP/push.json" >/dev/null
check "a delivery with --keep-days 30" test "$(deliveries)" = 1
setclock $((now + 20 * 86400))
sleep 1
check "... is still remembered 11 days later" test "$(deliveries)" = 1
setclock $((now + 40 * 86400))
check "... and forgotten after 30 days" wait_for 60 sh -c "[ \"\$(curl -s '$BASE/metrics' | awk '\$1 == \"kiln_webhook_deliveries\" {print \$2}')\" = 0 ]"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true
finish
