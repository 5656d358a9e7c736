#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's log records (issue 12): GET /api/builds/ID/log?step=&from=
# (records from a sequence number, stdout/stderr/kiln told apart) and the
# same with Accept: text/event-stream: lines arrive while the step runs,
# a stream cut in the middle and resumed with Last-Event-ID (as EventSource
# does) or from=SEQ loses and repeats no record; the pages are served.
# Real HTTP with curl.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
source "$(dirname "$0")/serve_web_lib.sh"
make_log_repo
start_serve --max-builds 2

# A build held at the gate: its first lines are records while it runs.
gate=$TMP/gate
id=$(run_trigger logs "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate\", \"_N\": \"3\", \"_M\": \"2000\"}}")
check "the build is WORKING" wait_status 120 "$id" WORKING
has_waiting() { log_json "$id" first | grep -q "waiting for the gate"; }
check "the step's lines are records before it ends" wait_for 120 has_waiting
log_json "$id" first >"$TMP/early.json"
check "... in order, numbered from 1" \
    test "$(jq_ '[r["seq"] for r in j["records"]] == list(range(1, len(j["records"])+1))' <"$TMP/early.json")" = True
check "... stdout lines say stdout" test "$(jq_ '[r["stream"] for r in j["records"] if r["text"]=="out 2"]' <"$TMP/early.json")" = "['stdout']"
check "... the stderr line says stderr" test "$(jq_ '[r["stream"] for r in j["records"] if r["text"]=="err line"]' <"$TMP/early.json")" = "['stderr']"
check "... ANSI escapes are kept for the page to render" \
    test "$(jq_ '[r["text"] for r in j["records"] if "red" in r["text"]][0] == "\x1b[31mred\x1b[0m plain"' <"$TMP/early.json")" = True
check "... not complete while the step runs" test "$(jq_ 'j["complete"]' <"$TMP/early.json")" = False
check "... every record has its time" test "$(jq_ 'all(r["time"].endswith("Z") for r in j["records"])' <"$TMP/early.json")" = True

# Follow it: curl reads the event stream; the step is still waiting.
sse() { curl -s -N -H 'Accept: text/event-stream' "$@"; }
curl -s -N -H 'Accept: text/event-stream' "$BASE/api/builds/$id/log?step=first" >"$TMP/sse1.txt" &
c1=$!
FAKE_PIDS+=("$c1")
sse_has() { grep -q "$2" "$1"; }
check "the stream sends what was printed so far" wait_for 60 sse_has "$TMP/sse1.txt" "waiting for the gate"
check "... as events with id: SEQ" grep -q '^id: 1$' "$TMP/sse1.txt"
check "... and is still open (the step runs)" kill -0 "$c1"
# The stream is cut mid-step: the client goes away.
kill "$c1"; wait "$c1" 2>/dev/null || true
# The last complete event (EventSource resumes from the last one it dispatched).
last=$(python3 -c 'import sys,re; print(re.findall(r"^id: (\d+)\ndata: .*\n\n", open(sys.argv[1]).read(), re.M)[-1])' "$TMP/sse1.txt")
touch "$gate"
# Let some of the 2000 later lines come before resuming.
has_more() { log_json "$id" first | grep -q '"more 10"'; }
check "the step goes on after the gate" wait_for 120 has_more
rc=0
timeout 120 curl -s -N -H 'Accept: text/event-stream' -H "Last-Event-ID: $last" \
    "$BASE/api/builds/$id/log?step=first&from=1" >"$TMP/sse2.txt" || rc=$?
check "the resumed stream ends by itself when the step has ended (event: end)" \
    test "$rc" = 0 -a -n "$(grep '^event: end' "$TMP/sse2.txt")"
check "the build succeeds" wait_status 120 "$id" SUCCESS FAILURE
log_json "$id" first "limit=20000" >"$TMP/all.json"
total=$(jq_ 'j["total"]' <"$TMP/all.json")
check "all records stored: 3 + err + red + waiting + after + 2000" test "$total" = 2007
check "... complete" test "$(jq_ 'j["complete"]' <"$TMP/all.json")" = True
# The two streams together: every record once, in order, same text.
python3 - "$TMP/sse1.txt" "$TMP/sse2.txt" "$TMP/all.json" >"$TMP/merge.txt" <<'PY'
import json, sys
def events(path):
    out, cur = [], {}
    for line in open(path, encoding="utf-8").read().split("\n"):
        if line == "":
            if "data" in cur and cur.get("event", "message") == "message":
                out.append((int(cur["id"]), json.loads(cur["data"])))
            cur = {}
        elif not line.startswith(":") and ":" in line:
            k, v = line.split(":", 1)
            cur[k] = v[1:] if v.startswith(" ") else v
    return out
got = events(sys.argv[1]) + events(sys.argv[2])
ids = [i for i, _ in got]
full = json.load(open(sys.argv[3]))["records"]
print("ids_ok" if ids == list(range(1, len(full) + 1)) else "ids_bad %s..%s n=%d" % (ids[:3], ids[-3:], len(ids)))
print("seq_ok" if all(i == r["seq"] for i, r in got) else "seq_bad")
print("text_ok" if [r["text"] for _, r in got] == [r["text"] for r in full] else "text_bad")
PY
sed 's/^/  # /' "$TMP/merge.txt"
check "cut and resumed with Last-Event-ID: ids 1..N, none lost or repeated" has_line "$TMP/merge.txt" ids_ok
check "... each event's id is its record's seq" has_line "$TMP/merge.txt" seq_ok
check "... the same texts as the stored log" has_line "$TMP/merge.txt" text_ok
check "the first stream was cut before the end (a real resume)" test "$last" -lt 2007

# from=SEQ and limit: a range of a finished log.
log_json "$id" first "from=1000&limit=5" >"$TMP/range.json"
check "from=1000&limit=5: records 1000..1004" \
    test "$(jq_ '[r["seq"] for r in j["records"]]' <"$TMP/range.json")" = "[1000, 1001, 1002, 1003, 1004]"
check "... next is 1005" test "$(jq_ 'j["next"]' <"$TMP/range.json")" = 1005
check "... their text" test "$(jq_ 'j["records"][0]["text"]' <"$TMP/range.json")" = "more 993"
sse "$BASE/api/builds/$id/log?step=first&from=2005" >"$TMP/sse3.txt"
check "SSE from=2005 of an ended step: 2005..2007, then end" \
    test "$(grep '^id: ' "$TMP/sse3.txt" | tr '\n' ' ')" = "id: 2005 id: 2006 id: 2007 "
check "... and the end event says next 2008" grep -q '"next":2008' "$TMP/sse3.txt"
check "a step not yet followed has its records too" \
    test "$(log_json "$id" third | jq_ '[r["text"] for r in j["records"]]')" = "['third runs']"
check "a step with no records: empty and complete" \
    test "$(log_json "$id" nope | jq_ '(j["records"], j["complete"])')" = "([], True)"

# A failed step: its stderr line, and kiln's note about the retry/exit.
fid=$(run_trigger logs '{"branch": "master", "substitutions": {"_FAIL": "1"}}')
check "a failing build ends FAILURE" wait_status 120 "$fid" FAILURE SUCCESS
check "... second's stderr line is a stderr record" \
    test "$(log_json "$fid" second | jq_ '[r["stream"] for r in j["records"] if r["text"]=="second fails"]')" = "['stderr']"

# kiln's own notes, and a sub-build's records and graph.
nid=$(run_trigger notes '{"branch": "master"}')
check "the build with a retry and a sub-build succeeds" wait_status 120 "$nid" SUCCESS FAILURE
check "... flaky's retry is a kiln note (stream kiln, level warning)" \
    test "$(log_json "$nid" flaky | jq_ '[(r["stream"], r.get("level")) for r in j["records"] if "retrying" in r["text"]]')" = "[('kiln', 'warning')]"
check "... between its stderr line and its stdout line" \
    test "$(log_json "$nid" flaky | jq_ '[r["stream"] for r in j["records"]]')" = "['stderr', 'kiln', 'stdout']"
api GET "/api/builds/$nid" >"$TMP/notes.json"
check "the build API has the graph: each step's waits" \
    test "$(jq_ 'j["waits"]' <"$TMP/notes.json")" = "{'flaky': [], 'child': ['flaky'], 'after': ['child']}"
sub=$(jq_ '[s for s in j["steps"] if s["key"]=="child"][0]["builds"][0]["id"]' <"$TMP/notes.json")
check "... the sub-build under its step, with its own waits" \
    test "$(jq_ '[s for s in j["steps"] if s["key"]=="child"][0]["builds"][0]["waits"]' <"$TMP/notes.json")" = "{'c1': [], 'c2': ['c1']}"
check "... and the substitutions kiln resolved" test "$(jq_ 'j["resolvedSubstitutions"]["TRIGGER_NAME"]' <"$TMP/notes.json")" = notes
check "a sub-build's step has its records under the sub-build's id" \
    test "$(log_json "$sub" c2 | jq_ '([r["text"] for r in j["records"]], j["complete"])')" = "(['child two'], True)"

# A follower that connects before its step starts is held, then fed.
gate2=$TMP/gate2
wid=$(run_trigger logs "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate2\"}}")
timeout 120 curl -s -N -H 'Accept: text/event-stream' "$BASE/api/builds/$wid/log?step=second" >"$TMP/sse4.txt" &
c4=$!
check "the early follower's build is WORKING" wait_status 120 "$wid" WORKING
check "... nothing of second yet" test -z "$(grep '^id:' "$TMP/sse4.txt")"
touch "$gate2"
rc=0; wait "$c4" || rc=$?
check "... it gets second's lines once second runs, then the end" \
    test "$rc" = 0 -a "$(grep '^data: {' "$TMP/sse4.txt" | grep -c 'second runs')" = 1 -a -n "$(grep '^event: end' "$TMP/sse4.txt")"

# Bad requests.
curl -s -o /dev/null -w '%{http_code}' "$BASE/api/builds/$id/log?step=first&from=x" >"$TMP/code"
check "from=x: 400" test "$(cat "$TMP/code")" = 400
curl -s -o /dev/null -w '%{http_code}' "$BASE/api/builds/no-such/log?step=first" >"$TMP/code"
check "an unknown build: 404" test "$(cat "$TMP/code")" = 404
curl -s -o /dev/null -w '%{http_code}' "$BASE/api/builds/a.b%00/log?step=first" >"$TMP/code"
check "a build id that is no id: 404" test "$(cat "$TMP/code")" = 404

# The pages are served by kiln itself (compiled in), with the build's id in.
curl -s -o "$TMP/page.html" -w '%{http_code} %{content_type}' "$BASE/builds/$id" >"$TMP/code"
check "GET /builds/ID: an HTML page" test "$(cat "$TMP/code")" = "200 text/html; charset=utf-8"
check "... naming the build and loading kiln's own scripts (no CDN)" \
    test -n "$(grep -F "content=\"$id\"" "$TMP/page.html")" -a -n "$(grep -F 'src="/static/build.js"' "$TMP/page.html")" \
    -a -z "$(grep -E 'src="https?:|href="https?:' "$TMP/page.html")"
curl -s -o /dev/null -w '%{http_code} %{content_type}' "$BASE/static/logview.js" >"$TMP/code"
check "GET /static/logview.js: JavaScript" test "$(cat "$TMP/code")" = "200 text/javascript; charset=utf-8"
curl -s -o /dev/null -w '%{http_code}' "$BASE/static/nope.js" >"$TMP/code"
check "GET /static/nope.js: 404" test "$(cat "$TMP/code")" = 404
curl -s -o /dev/null -w '%{http_code}' "$BASE/builds/a%22b" >"$TMP/code"
check "GET /builds/ with a character no id has: 404" test "$(cat "$TMP/code")" = 404
check "GET / lists nothing itself (the script asks the API)" \
    test -n "$(curl -s "$BASE/" | grep -F 'src="/static/list.js"')"

# SIGTERM with a follower connected: the server still exits 0.
gate3=$TMP/gate3
sid=$(run_trigger logs "{\"branch\": \"master\", \"substitutions\": {\"_GATE\": \"$gate3\"}}")
check "a build to follow at SIGTERM is WORKING" wait_status 120 "$sid" WORKING
curl -s -N -H 'Accept: text/event-stream' "$BASE/api/builds/$sid/log?step=first" >"$TMP/sse5.txt" &
c5=$!
FAKE_PIDS+=("$c5")
check "... followed" wait_for 60 sse_has "$TMP/sse5.txt" '^id: 1$'
kill -TERM "$SERVE_PID"
touch "$gate3"
rc=0; timeout 120 tail --pid="$SERVE_PID" -f /dev/null || rc=$?
check "kiln serve exits while a follower is connected" test "$rc" = 0
wait "$SERVE_PID"; rc=$?
check "... with status 0" test "$rc" = 0
finish
