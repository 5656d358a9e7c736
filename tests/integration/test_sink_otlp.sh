#!/usr/bin/env bash
# The otlp sink on the shipping core, against tests/fakes/fake_otlp.py: every
# line of every step arrives exactly once and in order while the receiver
# answers 429 (Retry-After), 500, hangs, drops the connection after keeping
# a batch, or is down for seconds; a 400 fails that batch only, reported in
# the report's logLoss with the receiver's message (the build's result stands
# unless the sink is required); the resource and record attributes follow
# OpenTelemetry's conventions; gzip bodies; a masked secret never reaches the
# receiver; a stalled receiver keeps kiln's memory bounded while the steps
# wait. Checked against the real OpenTelemetry exporter for Node when npm is
# reachable.
source "$(dirname "$0")/lib.sh"
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_otlp.py
CHECK=$KILN_SOURCE_DIR/tests/integration/shipcheck.py
start_fake "$TMP/otlp"
URL=http://127.0.0.1:$PORT/v1/logs
fault() { curl -sf -XPOST "http://127.0.0.1:$PORT/_fault" -d "$1" >/dev/null; }
records() { curl -sf "http://127.0.0.1:$PORT/_records" >"$1"; }

cat >p.yaml <<'Y'
steps:
- id: a
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 3000); do echo "a $i"; done']
- id: b
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 2000); do echo "b $i" >&2; done']
  waitFor: ['-']
Y

# run_case NAME FAULT_JSON [SINK OPTIONS]: a build with the fault armed; the
# records of that build must be complete and in order.
run_case() {
    local name=$1 f=$2 extra=${3:-}
    fault "$f"
    local rc
    rc=$(run_kiln "$name.out" run p.yaml --quiet --report "$name.json" \
        --sink "otlp:endpoint=$URL,batch_records=250,timeout=2s$extra")
    check "$name: exit 0" test "$rc" = 0
    fault '{"mode":"ok"}'
    records "$name.rec.json"
    local id
    id=$(jget "$name.json" 'j["id"]')
    if python3 "$CHECK" "$name.rec.json" "$id" a=a:3000 b=b:2000 >"$name.check" 2>&1; then
        pass "$name: every line once, in order"
    else
        fail "$name: every line once, in order"; sed 's/^/  /' "$name.check"; sed 's/^/  /' "$name.out" | tail -5
    fi
    check "$name: no loss reported" test "$(jget "$name.json" 'len(j.get("logLoss", []))')" = 0
}

run_case plain '{"mode":"ok"}'
run_case r429 '{"mode":"429","count":3,"retry_after":1}'
run_case r500 '{"mode":"500","count":4}'
run_case hang '{"mode":"hang","count":1,"seconds":5}'
run_case close '{"mode":"close","count":3}'
run_case gzip '{"mode":"close","count":1}' ",gzip=true"
check "gzip: the bodies came gzipped" python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); bid=sys.argv[2]
r=[x for x in d["records"] if x["run_id"]==bid]
sys.exit(0 if r and all(x["gzip"] for x in r) else 1)' gzip.rec.json "$(jget gzip.json 'j["id"]')"
# "down": the receiver closes its port for 4 s while the build runs.
run_case down '{"mode":"down","seconds":4}'

# The raw count shows the retries really happened (duplicates kept by the
# receiver for the "close" runs), and 429 made kiln wait its Retry-After.
records all.json
check "close: the receiver saw duplicates (the batches were resent)" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["raw"] > len(d["records"]) else 1)' all.json
check "429: the requests logged 429 then 200" grep -q '"status": 429' "$TMP/otlp/requests.jsonl"

# Attributes: resource and record, one record of step b.
check "attributes follow the OpenTelemetry conventions" python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); bid=sys.argv[2]
r=[x for x in d["records"] if x["run_id"]==bid and x["step"]=="b"][0]
assert r["service"]=="kiln", r
assert r["stream"]=="stderr" and r["severity"]=="WARN" and r["severity_number"]==13, r
assert r["seq"]==1 and r["body"]=="b 1", r
assert r["time_ns"] > 1_600_000_000 * 10**9, r
' all.json "$(jget plain.json 'j["id"]')"

# 400: that batch is refused; the others arrive; the loss is in the report
# with the receiver's message; the build stands.
fault '{"mode":"400","count":1}'
rc=$(run_kiln bad.out run p.yaml --quiet --report bad.json --sink "otlp:endpoint=$URL,batch_records=250")
check "400: exit 0 (the build's result stands)" test "$rc" = 0
# Steps a and b run at once, so the refused batch may hold lines of both:
# logLoss has one entry per step, 250 lines in all.
check "400: logLoss names the sink, 250 lines and the receiver's message" python3 -c '
import json,sys
j=json.load(open(sys.argv[1]))
l=j["logLoss"]
assert l and all(x["sink"]=="otlp" for x in l) and sum(x["lines"] for x in l)==250, l
assert all("HTTP 400: Invalid request (injected fault)" in x["reason"] for x in l), l
' bad.json
check "400: the summary warns" grep -q "log sink 'otlp' lost .* lines) of step" bad.out
records bad.rec.json
check "400: the other lines arrived" python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); bid=sys.argv[2]
n=len([x for x in d["records"] if x["run_id"]==bid])
sys.exit(0 if n==5000-250 else print(n) or 1)' bad.rec.json "$(jget bad.json 'j["id"]')"
fault '{"mode":"400","count":1}'
rc=$(run_kiln badreq.out run p.yaml --quiet --report badreq.json --sink "otlp:endpoint=$URL,batch_records=250,required=true")
check "400 on a required sink: the build fails" test "$rc" != 0
check "400 on a required sink: FAILURE in the report" test "$(jget badreq.json 'j["status"]')" = FAILURE

# A secret, written in two pieces, is masked before the core sees it.
cat >s.yaml <<'Y'
availableSecrets:
  secretManager:
  - {versionName: projects/p/secrets/pw/versions/1, env: PW}
steps:
- id: s
  entrypoint: bash
  secretEnv: [PW]
  args: [-c, 'half=$${#PW}; half=$$((half / 2)); printf "pw=%s" "$${PW:0:$$half}"; sleep 0.3; echo "$${PW:$$half}"; echo "s 1"']
Y
KILN_SECRET_PW=hunter2hunter2 "$KILN" run s.yaml --quiet --report s.json --sink "otlp:endpoint=$URL" >s.out 2>&1
records s.rec.json
check "secret: the receiver never saw it" python3 -c '
import sys; t=open(sys.argv[1]).read(); sys.exit(1 if "hunter2" in t else 0)' s.rec.json
check "secret: it arrived masked" grep -qF '"body": "********"' s.rec.json

# A stalled receiver (it hangs 8 s) and a step printing ~10 MB: kiln stays
# under its memory bound (memory=2 MiB; RSS well under 64 MiB) while the
# step waits, and every line arrives afterwards.
cat >big.yaml <<'Y'
steps:
- id: big
  entrypoint: bash
  args: [-c, 'seq -f "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx big %.0f" 1 100000']
Y
fault '{"mode":"hang","count":1,"seconds":8}'
"$KILN" run big.yaml --quiet --report big.json --sink "otlp:endpoint=$URL,memory=2097152,timeout=10s" >big.out 2>&1 &
kpid=$!
peak=0
while kill -0 "$kpid" 2>/dev/null; do
    r=$(awk '/^VmHWM/ {print $2}' /proc/$kpid/status 2>/dev/null || true)
    [ -n "$r" ] && peak=$r
    sleep 0.2
done
wait "$kpid"; rc=$?
check "stalled receiver: exit 0" test "$rc" = 0
echo "# peak RSS of kiln: ${peak} KiB"
# (Not `ldd | grep -q`: with pipefail, grep's early exit makes ldd's SIGPIPE
# the pipeline's status.)
if grep -qa __asan_init "$KILN"; then
    echo "skip - stalled receiver: RSS bound (an ASan build's RSS is ASan's)"
else
    check "stalled receiver: kiln's peak RSS under 64 MiB (${peak} KiB)" test "$peak" -lt 65536
fi
records big.rec.json
if python3 "$CHECK" big.rec.json "$(jget big.json 'j["id"]')" big=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" big":100000 >big.check 2>&1; then
    pass "stalled receiver: 100000 lines once, in order"
else
    fail "stalled receiver: 100000 lines once, in order"; cat big.check
fi

# The fake against the real OpenTelemetry exporter for Node.
if client=$(bash "$KILN_SOURCE_DIR/scripts/otlp-client.sh" 2>client.err); then
    nrc=0
    NODE_PATH=$client/node_modules node "$KILN_SOURCE_DIR/tests/fakes/otlp_client_check.js" "$URL" >node.out 2>&1 || nrc=$?
    check "node exporter: exports without error" test "$nrc" = 0 || sed 's/^/  /' node.out
    records node.json
    check "node exporter: the fake kept its 3 records with their attributes" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
r=[x for x in d["records"] if x["service"]=="otlp-client-check"]
assert [x["body"] for x in r]==["one","two","three"], r
assert r[1]["severity"]=="WARN" and r[1]["step"]=="stepx" and r[0]["time_ns"]>0, r
' node.json
else
    if [ "${KILN_REQUIRE_NPM:-0}" = 1 ]; then fail "node exporter: $(cat client.err)"; else echo "skip - node exporter: $(cat client.err)"; fi
fi
finish
