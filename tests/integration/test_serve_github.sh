#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's POST /hooks/github (issue 12): payloads signed by the test
# with HMAC-SHA256 (python3's hmac), as GitHub signs them. A push starts a
# build for each trigger that matches exactly as `kiln trigger` decides
# (repository, branch, file filters), fetched from the payload's clone_url
# (a real bare repository here) into the server's mirror; a redelivery
# starts nothing; a bad signature (401), a body over 25 MiB (413), a body
# that is not JSON (400) and an event kiln does not handle (202) each leave
# one log line and start nothing; ping answers 200.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
make_repo
start_serve
master=$(git -C "$TMP/app.git" rev-parse master)
feature=$(git -C "$TMP/app.git" rev-parse feature)

# hook EVENT DELIVERY FILE [SECRET]: POST FILE signed with SECRET; prints the body, code in $TMP/code
hook() {
    local sig
    sig=$(python3 -c 'import hmac,hashlib,sys; print("sha256="+hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "${4:-$SECRET}" "$3")
    curl -s -o "$TMP/resp.json" -w '%{http_code}' -X POST -H "X-GitHub-Event: $1" -H "X-GitHub-Delivery: $2" \
        -H "X-Hub-Signature-256: $sig" -H 'Content-Type: application/json' --data-binary "@$3" \
        "$BASE/hooks/github" >"$TMP/code"
    cat "$TMP/resp.json"
}
# push_payload FILE REF AFTER FILES...: a push event's body (fields kiln reads, as GitHub sends them)
push_payload() {
    local out=$1 ref=$2 after=$3; shift 3
    python3 - "$out" "$ref" "$after" "$TMP/app.git" "$@" <<'PY'
import json, sys
out, ref, after, url = sys.argv[1:5]
files = sys.argv[5:]
json.dump({"ref": ref, "before": "0" * 40, "after": after, "created": False, "deleted": False,
           "repository": {"name": "app", "full_name": "someone/app", "clone_url": url,
                          "html_url": "https://github.com/someone/app"},
           "commits": [{"id": after, "added": files, "modified": [], "removed": []}],
           "head_commit": {"id": after}}, open(out, "w"))
PY
}
nbuilds() { api GET "/api/builds" | jq_ 'len(j["builds"])'; }
loglines() { grep -c "github delivery $1" "$TMP/serve.log" || true; }

echo '{"zen": "Keep it logically awesome.", "hook_id": 1}' >"$TMP/ping.json"
hook ping d-ping "$TMP/ping.json" >/dev/null
check "ping: 200" test "$(code)" = 200
check "ping: one log line" test "$(loglines d-ping)" = 1

push_payload "$TMP/push.json" refs/heads/master "$master" src/app.py
hook push d-1 "$TMP/push.json" >"$TMP/r1.json"
check "push to master: 200" test "$(code)" = 200
check "push to master: one build" test "$(jq_ 'len(j["builds"])' <"$TMP/r1.json")" = 1
check "... for app-master only" test "$(jq_ '[t["name"] for t in j["triggers"] if t["fired"]]' <"$TMP/r1.json")" = "['app-master']"
check "... other-master did not fire: another repository" \
    grep -q "watches repository 'other'" "$TMP/r1.json"
id=$(jq_ 'j["builds"][0]' <"$TMP/r1.json")
check "the build succeeds" wait_status 120 "$id" SUCCESS FAILURE INTERNAL_ERROR
check "... SUCCESS" test "$(bstatus "$id")" = SUCCESS
check "it built the pushed commit" test "$(api GET "/api/builds/$id" | jq_ 'j["commit"]')" = "$master"
check "it came from github" test "$(api GET "/api/builds/$id" | jq_ 'j["source"]')" = github
check "the commit was fetched into a mirror under --data" test -d "$(ls -d "$TMP"/data/mirrors/app-*.git | head -1)"
check "the build's logs are there" grep -q "building master at ${master:0:7} (app-master)" "$TMP/data/builds/$id/logs/wait.log"

hook push d-1 "$TMP/push.json" >"$TMP/r2.json"
check "a redelivery (same X-GitHub-Delivery): 200" test "$(code)" = 200
check "... starts nothing" test "$(jq_ 'len(j["builds"])' <"$TMP/r2.json")" = 0
check "... still one build" test "$(nbuilds)" = 1

hook push d-bad "$TMP/push.json" wrong-secret >/dev/null
check "a bad signature: 401" test "$(code)" = 401
check "... one log line" test "$(loglines d-bad)" = 1
curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: d-nosig" \
    --data-binary "@$TMP/push.json" "$BASE/hooks/github" >"$TMP/code"
check "no signature: 401" test "$(code)" = 401

echo '{"ref": "refs/heads/master", "after": ' >"$TMP/broken.json"
hook push d-broken "$TMP/broken.json" >/dev/null
check "a body that is not JSON: 400" test "$(code)" = 400
check "... one log line" test "$(loglines d-broken)" = 1

echo '{"action": "opened"}' >"$TMP/issue.json"
hook issues d-issue "$TMP/issue.json" >/dev/null
check "an event kiln does not handle: 202" test "$(code)" = 202
check "... one log line" test "$(loglines d-issue)" = 1

head -c $((26 << 20)) /dev/zero | tr '\0' ' ' >"$TMP/big.json"
hook push d-big "$TMP/big.json" >/dev/null
check "a body over 25 MiB: 413" test "$(code)" = 413
check "... one log line" test "$(loglines d-big)" = 1
rm -f "$TMP/big.json"
check "none of those started a build" test "$(nbuilds)" = 1

push_payload "$TMP/docs.json" refs/heads/master "$master" docs/guide.md
hook push d-docs "$TMP/docs.json" >"$TMP/r3.json"
check "a push touching only ignoredFiles: nothing fires" test "$(jq_ 'len(j["builds"])' <"$TMP/r3.json")" = 0
check "... and says why" grep -q "ignoredFiles" "$TMP/r3.json"

push_payload "$TMP/feat.json" refs/heads/feature "$feature" feature.txt
hook push d-feat "$TMP/feat.json" >"$TMP/r4.json"
check "push to feature: app-feature (repo by name) fires, not app-master" \
    test "$(jq_ '[t["name"] for t in j["triggers"] if t["fired"]]' <"$TMP/r4.json")" = "['app-feature']"
fid=$(jq_ 'j["builds"][0]' <"$TMP/r4.json")
check "the feature build succeeds" wait_status 120 "$fid" SUCCESS FAILURE INTERNAL_ERROR
check "... SUCCESS at the feature commit" \
    test "$(api GET "/api/builds/$fid" | jq_ 'j["status"]+" "+j["commit"]')" = "SUCCESS $feature"
check "?trigger=app-feature lists it" \
    test "$(api GET "/api/builds?trigger=app-feature" | jq_ '[b["id"] for b in j["builds"]]')" = "['$fid']"

kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
check "kiln serve exits 0 on SIGTERM" test "$rc" = 0
finish
