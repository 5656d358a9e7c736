#!/usr/bin/env bash
# The shipping core's spool (otlp sink, tests/fakes/fake_otlp.py): a
# receiver down for the whole build leaves the batches in --log-dir's .spool
# after --sink-grace, says how much and where, records it in the report;
# `kiln logs flush` sends them later, every line once and in order. A kiln
# killed with SIGKILL mid-build while the receiver is down leaves its
# batches on disk too: a flush delivers them all, none twice; so does the
# next `kiln run` with the same --log-dir and sink, before its own records.
source "$(dirname "$0")/lib.sh"
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_otlp.py
CHECK=$KILN_SOURCE_DIR/tests/integration/shipcheck.py
# A port nobody listens on: the fake's, once it is stopped.
start_fake "$TMP/probe"
P=$PORT
stop_fake "$FAKE_PID"
URL=http://127.0.0.1:$P/v1/logs

cat >p.yaml <<'Y'
steps:
- id: a
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 3000); do echo "a $i"; done']
- id: b
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 2000); do echo "b $i" >&2; done']
Y
rc=$(run_kiln down.out run p.yaml --quiet --log-dir logs --report down.json --sink-grace 2s \
    --sink "otlp:endpoint=$URL,batch_records=300")
check "down: exit 0 (the build's result stands)" test "$rc" = 0
check "down: says how much is left and where" grep -q "log sink 'otlp': 5000 records not delivered; 5000 records (.* bytes) left in logs/.spool/otlp-[0-9a-f]\{16\}: send them with 'kiln logs flush logs/.spool'" down.out
check "down: the report's logLoss says the lines are in the spool" python3 -c '
import json,sys
l=json.load(open(sys.argv[1]))["logLoss"]
assert sum(x["lines"] for x in l)==5000, l
assert all("left in the spool logs/.spool (send it with: kiln logs flush logs/.spool)" in x["reason"] for x in l), l
' down.json
check "down: spool files, mode 0600" python3 -c '
import os,sys,stat
fs=[os.path.join(d,f) for d,_,n in os.walk("logs/.spool") for f in n if f.endswith(".req")]
assert fs and all(stat.S_IMODE(os.stat(f).st_mode)==0o600 for f in fs), fs
'
rc=0; "$KILN" logs flush logs/.spool >flush0.out 2>&1 || rc=$?
check "flush with the receiver still down: exit 1, the files stay" test "$rc" = 1
check "flush with the receiver still down: says so" grep -q "not delivered" flush0.out

start_fake "$TMP/otlp" --port "$P"
fault() { curl -sf -XPOST "http://127.0.0.1:$P/_fault" -d "$1" >/dev/null; }
records() { curl -sf "http://127.0.0.1:$P/_records" >"$1"; }
fault '{"mode":"500","count":2}'
rc=0; "$KILN" logs flush logs/.spool >flush.out 2>&1 || rc=$?
check "flush: exit 0" test "$rc" = 0
check "flush: says what it sent" grep -q "kiln: logs flush: .* batches (.* bytes) sent from logs/.spool; 0 refused, 0 left" flush.out
records down.rec.json
if python3 "$CHECK" down.rec.json "$(jget down.json 'j["id"]')" a=a:3000 b=b:2000 >down.check 2>&1; then
    pass "flush: every line once, in order"
else
    fail "flush: every line once, in order"; cat down.check flush.out
fi
check "flush: the spool is empty" test -z "$(find logs/.spool -name '*.req')"

# SIGKILL mid-build, receiver down: the step prints its lines and sleeps;
# once the spool holds them all, kiln is killed.
stop_fake "$FAKE_PID"
cat >k.yaml <<Y
steps:
- id: k
  entrypoint: bash
  args: [-c, 'for i in \$(seq 1 4000); do echo "k \$i"; done; exec $SLEEP 300']
Y
"$KILN" run k.yaml --quiet --log-dir klogs --sink "otlp:endpoint=$URL,batch_records=500" >k.out 2>&1 &
kpid=$!
spooled() {
    python3 -c '
import os
n=0
for d,_,fs in os.walk("klogs/.spool"):
    for f in fs:
        if f.endswith(".req"): n+=open(os.path.join(d,f),"rb").read().count(b"\"kiln.record.id\"")
raise SystemExit(0 if n>=4000 else 1)'
}
check "kill -9: the spool holds every line while kiln runs" wait_for 90 spooled
kill -KILL "$kpid"; wait "$kpid" 2>/dev/null || true
start_fake "$TMP/otlp2" --port "$P"
rc=0; "$KILN" logs flush klogs/.spool >kflush.out 2>&1 || rc=$?
check "kill -9: flush exit 0" test "$rc" = 0
records k.rec.json
check "kill -9: every line once, in order, none twice" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
r=[x for x in d["records"] if x["step"]=="k"]
assert [x["body"] for x in r]==["k %d" % i for i in range(1,4001)], len(r)
assert d["raw"]==len(d["records"]), (d["raw"], len(d["records"]))
' k.rec.json

# The next `kiln run` with the same --log-dir and sink sends what a killed
# kiln left, before its own records; a corrupt file there is named (with
# its offset) and left alone, not sent and not a crash.
stop_fake "$FAKE_PID"
"$KILN" run k.yaml --quiet --log-dir rlogs --sink "otlp:endpoint=$URL,batch_records=500" >r1.out 2>&1 &
kpid=$!
spooled_r() {
    python3 -c '
import os
n=0
for d,_,fs in os.walk("rlogs/.spool"):
    for f in fs:
        if f.endswith(".req"): n+=open(os.path.join(d,f),"rb").read().count(b"\"kiln.record.id\"")
raise SystemExit(0 if n>=4000 else 1)'
}
check "rerun: the spool holds every line while the first kiln runs" wait_for 90 spooled_r
# A second kiln while the first one runs: the files are the first one's
# (it holds the spool's flock), not leftovers to send.
cat >q.yaml <<'Y'
steps:
- id: q
  entrypoint: bash
  args: [-c, 'echo q']
Y
rc=$(run_kiln q.out run q.yaml --quiet --log-dir rlogs --sink-grace 1s --sink "otlp:endpoint=$URL,batch_records=500")
sdir=$(find rlogs/.spool -maxdepth 1 -name 'otlp-*' ! -name '*.*')
check "rerun: a kiln started beside a running one does not take its files" \
    grep -q "kiln: log sink 'otlp': [0-9]* batches in $sdir (another endpoint's, or a running kiln's) are not sent by this run" q.out
check "rerun: ... and spools its own beside them, in NAME-HASH.1" \
    grep -q "records (.* bytes) left in $sdir.1: send them" q.out
# While a kiln holds a sink directory, flush leaves it alone: one line, exit 3.
rc=0; "$KILN" logs flush rlogs/.spool >lflush.out 2>&1 || rc=$?
check "flush beside a running kiln: exit 3" test "$rc" = 3
check "flush beside a running kiln: says who holds what" \
    grep -q "kiln: logs flush: $sdir: a running kiln holds $sdir/.lock (it sends these [0-9]* batches itself); not flushed: try again when it has ended" lflush.out
kill -KILL "$kpid"; wait "$kpid" 2>/dev/null || true
nreq=$(( $(find "$sdir" "$sdir.1" -name '*.req' | wc -l) ))
printf 'KILNSPOOL 1\nurl %s\nlength 99\n\n{"cut":' "$URL" >"$sdir/0000000000000000-corrupt.req"
start_fake "$TMP/otlp3" --port "$P"
cat >r.yaml <<'Y'
steps:
- id: r
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 1000); do echo "r $i"; done']
Y
rc=$(run_kiln r2.out run r.yaml --quiet --log-dir rlogs --report r2.json --sink-grace 60s \
    --sink "otlp:endpoint=$URL,batch_records=500")
check "rerun: exit 0" test "$rc" = 0
check "rerun: says it sends the earlier runs' batches first (both directories')" \
    grep -q "kiln: log sink 'otlp': sending first $nreq batches (.* bytes) an earlier run left in $sdir" r2.out
check "rerun: the corrupt file is named with its offset and left alone" \
    grep -q "kiln: warning: log sink 'otlp': $sdir/0000000000000000-corrupt.req: offset [0-9]*: expected a body of 99 bytes ('length'), found 7 (truncated); left alone" r2.out
check "rerun: the corrupt file stays, nothing else is left" \
    test "$(find rlogs/.spool -name '*.req')" = "$sdir/0000000000000000-corrupt.req"
records r.rec.json
check "rerun: every line of the killed run once, in order, before the new run's" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
b=[x["body"] for x in d["records"] if x["step"] in ("k","r")]
assert [x["body"] for x in d["records"] if x["step"]=="q"]==["q"], d["records"][:1]
want=["k %d" % i for i in range(1,4001)]+["r %d" % i for i in range(1,1001)]
assert b==want, (len(b), [x for x in b if x not in want][:3], b[:2], b[3999:4002])
assert d["raw"]==len(d["records"]), (d["raw"], len(d["records"]))
' r.rec.json
rc=0; "$KILN" logs flush rlogs/.spool >rflush.out 2>&1 || rc=$?
check "flush of a corrupt file: exit 1, names it with its offset" \
    sh -c "test $rc = 1 && grep -q 'kiln: logs flush: $sdir/0000000000000000-corrupt.req: offset [0-9]*: expected a body of 99 bytes' rflush.out"
# Another --sink list, the same sink and endpoint: the same directory (the
# corrupt file there is met again); another endpoint: another directory, and
# a line says where the first one's batches are.
rc=$(run_kiln r3.out run q.yaml --quiet --log-dir rlogs --sink "jsonl:path=$TMP/q.jsonl" \
    --sink "otlp:endpoint=$URL,batch_records=500")
check "another --sink list: the same sink and endpoint find their directory" \
    grep -q "kiln: warning: log sink 'otlp': $sdir/0000000000000000-corrupt.req: offset" r3.out
rc=$(run_kiln r4.out run q.yaml --quiet --log-dir rlogs --sink "otlp:endpoint=$URL?other,batch_records=500")
check "another endpoint: says the first one's batches are left for flush" \
    grep -q "kiln: log sink 'otlp': 1 batches in $sdir (another endpoint's, or a running kiln's) are not sent by this run; send them with 'kiln logs flush rlogs/.spool'" r4.out
finish
