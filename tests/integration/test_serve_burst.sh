#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve under a burst of webhooks (issue 12): 200 deliveries to POST
# /hooks/github over 20 concurrent keep-alive connections (python threads):
# 150 distinct pushes (GitHub's own push examples from npm's
# @octokit/webhooks-examples, signed by @octokit/webhooks, both pinned and
# installed privately by scripts/octokit-webhooks.sh) and 50 redeliveries
# of some of them, shuffled. Every delivery is answered 2xx; each distinct
# one queues exactly one build, none twice, none lost (counted in
# /api/builds); each redelivery of a delivery starts nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
if ! dir=$(bash "$KILN_SOURCE_DIR/scripts/octokit-webhooks.sh" 2>"$TMP/npm.err"); then
    cat "$TMP/npm.err"
    [ "${KILN_REQUIRE_OCTOKIT:-0}" = 1 ] && { echo "FAIL - no @octokit/webhooks (KILN_REQUIRE_OCTOKIT=1)"; exit 1; }
    skip_test "no private install of @octokit/webhooks: $(tail -1 "$TMP/npm.err")"
fi
make_repo
master=$(git -C "$TMP/app.git" rev-parse master)
NODE_PATH=$dir/node_modules node "$KILN_SOURCE_DIR/tests/integration/serve/octokit_payloads.js" \
    "$TMP/deliveries.jsonl" "$SECRET" "$TMP/app.git" "$master" 150 50
check "200 signed deliveries written" test "$(wc -l <"$TMP/deliveries.jsonl")" = 200
# The builds themselves need not run for this: one slot, the others QUEUED.
start_serve --max-builds 1 --grace 1s

python3 - "$TMP/deliveries.jsonl" "$BASE" "$TMP/answers.json" <<'PY'
import http.client, json, random, sys, threading, urllib.parse
deliveries = [json.loads(l) for l in open(sys.argv[1])]
random.seed(12)
random.shuffle(deliveries)
u = urllib.parse.urlparse(sys.argv[2])
answers, lock = [], threading.Lock()
def worker(k):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    for d in deliveries[k::20]:
        conn.request("POST", "/hooks/github", body=d["body"].encode(), headers={
            "Content-Type": "application/json", "X-GitHub-Event": d["event"],
            "X-GitHub-Delivery": d["delivery"], "X-Hub-Signature-256": d["signature"]})
        r = conn.getresponse()
        body = r.read()
        try:
            j = json.loads(body)
        except ValueError:
            j = {"raw": body.decode(errors="replace")}
        with lock:
            answers.append({"delivery": d["delivery"], "status": r.status, "answer": j})
    conn.close()
threads = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
for t in threads: t.start()
for t in threads: t.join()
json.dump(answers, open(sys.argv[3], "w"))
PY
q() { python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$TMP/answers.json" "$1"; }
check "all 200 deliveries answered" test "$(q 'len(a)')" = 200
check "... every one 2xx" test "$(q 'sorted(set(x["status"] for x in a))')" = "[200]"
check "150 builds queued, one per distinct delivery" \
    test "$(q 'len([b for x in a for b in x["answer"].get("builds", [])])')" = 150
check "... no delivery started two" \
    test "$(q 'max(__import__("collections").Counter(x["delivery"] for x in a if x["answer"].get("builds")).values())')" = 1
check "... every distinct delivery started one" \
    test "$(q 'len(set(x["delivery"] for x in a if x["answer"].get("builds")))')" = 150
check "the 50 redeliveries were answered as duplicates" \
    test "$(q 'len([x for x in a if x["answer"].get("duplicate")])')" = 50
# Count what the history holds, page by page.
python3 - "$BASE" "$TMP/answers.json" >"$TMP/count.txt" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
ids, cursor = [], None
while True:
    url = base + "/api/builds?pageSize=100" + (f"&cursor={cursor}" if cursor else "")
    j = json.load(urllib.request.urlopen(url))
    ids += [b["id"] for b in j["builds"]]
    cursor = j.get("nextCursor")
    if not cursor:
        break
answered = {b for x in json.load(open(sys.argv[2])) for b in x["answer"].get("builds", [])}
print(len(ids), len(set(ids)), set(ids) == answered)
PY
check "/api/builds holds exactly those 150 builds, none lost, none twice" test "$(cat "$TMP/count.txt")" = "150 150 True"
check "the server logged each redelivery once" \
    test "$(grep -c 'github delivery burst-[0-9]*: seen before (a redelivery)' "$TMP/serve.log")" = 50
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
check "kiln serve exits 0 on SIGTERM after the burst" test "$rc" = 0
finish
