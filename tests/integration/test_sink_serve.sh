#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve with a remote sink (--sink otlp:...): its spool is in the data
# directory (DATA/spool). A build while the receiver is down ends SUCCESS
# (logs are not the build); its batches wait in DATA/spool and reach the
# receiver once it is up, while the server runs. A server stopped while the
# receiver is down leaves its batches there (and says so); the next server
# sends them at startup. Every line arrives exactly once. Real kiln serve,
# real git; tests/fakes/fake_otlp.py as the receiver.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_otlp.py
make_repo
start_fake "$TMP/probe"
P=$PORT
stop_fake "$FAKE_PID"
URL=http://127.0.0.1:$P/v1/logs
SPOOL=$TMP/data/spool
records() { curl -sf "http://127.0.0.1:$P/_records" >"$1"; }
# once FILE ID: the build's two lines arrived, each exactly once
once() {
    python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
r=[x["body"] for x in d["records"] if x.get("run_id")==sys.argv[2] and x.get("step") in ("wait","check")]
want=[b for b in r if b.startswith("building master at ") or b=="fail=0"]
assert len(want)==2 and len(set(want))==2, r
' "$1" "$2"
}
arrived() { records "$TMP/rec.json" && once "$TMP/rec.json" "$1" 2>/dev/null; }

start_serve --sink "otlp:endpoint=$URL,batch_records=1,timeout=2s" --sink-grace 1s
id=$(run_trigger app-master '{"branch": "master"}')
check "receiver down: the build ends SUCCESS" wait_status 120 "$id" SUCCESS
spooled() { [ -n "$(find "$SPOOL" -name '*.req' 2>/dev/null)" ]; }
check "receiver down: the batches wait in DATA/spool" wait_for 60 spooled
check "... in a directory named for the sink and its endpoint" \
    test -n "$(find "$SPOOL" -maxdepth 1 -name 'otlp-????????????????')"
start_fake "$TMP/otlp" --port "$P"
check "receiver up: the server sends them (every line once)" wait_for 120 arrived "$id"
check "receiver up: the spool empties" wait_for 60 sh -c "test -z \"\$(find '$SPOOL' -name '*.req')\""

# Stopped while the receiver is down: the batches stay in DATA/spool; the
# next server sends them at startup, before any build.
stop_fake "$FAKE_PID"
id2=$(run_trigger app-master '{"branch": "master"}')
check "second build, receiver down: SUCCESS" wait_status 120 "$id2" SUCCESS
check "second build: spooled" wait_for 60 spooled
kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
check "the server stops (exit 0)" test "$rc" = 0
check "the server says what it left and where" grep -q "left in $SPOOL/otlp-[0-9a-f]*: send them with 'kiln logs flush $SPOOL'" "$TMP/serve.log"
check "... and leaves it on disk" spooled
start_fake "$TMP/otlp2" --port "$P"
start_serve --sink "otlp:endpoint=$URL,batch_records=1,timeout=2s" --sink-grace 1s
check "the next server sends them at startup" wait_for 120 arrived "$id2"
check "... and says so" grep -q "kiln: log sink 'otlp': sending first [0-9]* batches (.* bytes) an earlier run left in $SPOOL/otlp-" "$TMP/serve.log"
records "$TMP/rec2.json"
check "nothing twice at the receiver (raw = kept)" python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); assert d["raw"]==len(d["records"]), (d["raw"], len(d["records"]))' "$TMP/rec2.json"
finish
