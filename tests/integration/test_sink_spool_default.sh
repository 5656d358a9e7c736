#!/usr/bin/env bash
# The spool without --log-dir, and credentials kept off the disk.
# A receiver that is down for the whole build, no --log-dir: the build ends
# (its result stands; a required sink fails it), the batches are left in
# $HOME/.local/state/kiln/spool (or $XDG_STATE_HOME/kiln/spool) and a line
# says where. The spool holds no token (otlp headers=, cloud-logging
# token=); `kiln logs flush` says which header it lacks, and with it given
# again (--sink NAME:headers=... / token=..., or GOOGLE_OAUTH_ACCESS_TOKEN)
# sends every line exactly once to a receiver that requires the token.
source "$(dirname "$0")/lib.sh"
CHECK=$KILN_SOURCE_DIR/tests/integration/shipcheck.py
export HOME=$TMP/home
unset XDG_STATE_HOME
mkdir -p "$HOME"
TOKEN=tok-$MARK-s3cret

cat >p.yaml <<'Y'
steps:
- id: a
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 2000); do echo "a $i"; done']
- id: b
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 1000); do echo "b $i" >&2; done']
Y

# ---- otlp ------------------------------------------------------------------
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_otlp.py
start_fake "$TMP/probe"
P=$PORT
stop_fake "$FAKE_PID"
URL=http://127.0.0.1:$P/v1/logs
ROOT=$HOME/.local/state/kiln/spool

rc=$(run_kiln down.out run p.yaml --quiet --report down.json --sink-grace 1s \
    --sink "otlp:endpoint=$URL,batch_records=250,headers=Authorization=Bearer $TOKEN;X-Scope-OrgID=team-$TOKEN")
check "no --log-dir, receiver down: the build ends, exit 0" test "$rc" = 0
check "no --log-dir: the line says where the spool is" \
    grep -q "log sink 'otlp': 3000 records not delivered; 3000 records (.* bytes) left in $ROOT/otlp-[0-9a-f]\{16\}: send them with 'kiln logs flush $ROOT'" down.out
check "no --log-dir: the report says the lines are in the spool" python3 -c '
import json,sys
l=json.load(open(sys.argv[1]))["logLoss"]
assert sum(x["lines"] for x in l)==3000, l
assert all("left in the spool %s (send it with: kiln logs flush %s)" % (sys.argv[2], sys.argv[2]) in x["reason"] for x in l), l
' down.json "$ROOT"
check "spool files are 0600 in a 0700 directory" python3 -c '
import os,sys,stat
fs=[os.path.join(d,f) for d,_,n in os.walk(sys.argv[1]) for f in n if f.endswith(".req")]
assert fs and all(stat.S_IMODE(os.stat(f).st_mode)==0o600 for f in fs), fs
assert all(stat.S_IMODE(os.stat(os.path.dirname(f)).st_mode)==0o700 for f in fs)
' "$ROOT"
check "the spool holds no credential" sh -c "! grep -rq -e '$TOKEN' '$ROOT'"
check "the spool names the headers it left out" sh -c "grep -q '^needs Authorization' $ROOT/otlp-*/*.req && grep -q '^needs X-Scope-OrgID' $ROOT/otlp-*/*.req"

start_fake "$TMP/otlp" --port "$P" --token "$TOKEN"
records() { curl -sf "http://127.0.0.1:$P/_records" >"$1"; }
rc=0; "$KILN" logs flush "$ROOT" >f0.out 2>&1 || rc=$?
check "flush without the credential: exit 1" test "$rc" = 1
check "flush without the credential: says which header and how to give it" \
    grep -q "kiln: logs flush: $ROOT/otlp-[0-9a-f]*: its batches need the header 'Authorization', which kiln does not write to the spool: give it with --sink otlp:headers=Authorization=VALUE; [0-9]* batches not sent" f0.out
records none.json
check "flush without the credential: nothing was sent" python3 -c '
import json,sys; assert json.load(open(sys.argv[1]))["raw"]==0' none.json

rc=0; "$KILN" logs flush "$ROOT" --sink "otlp:headers=Authorization=Bearer $TOKEN;X-Scope-OrgID=team-$TOKEN" >f1.out 2>&1 || rc=$?
check "flush with the header given again: exit 0" test "$rc" = 0
records otlp.json
if python3 "$CHECK" otlp.json "$(jget down.json 'j["id"]')" a=a:2000 b=b:1000 >otlp.check 2>&1; then
    pass "flush: every line once, in order, authenticated"
else
    fail "flush: every line once, in order, authenticated"; cat otlp.check f1.out
fi
check "flush: the spool is empty" test -z "$(find "$ROOT" -name '*.req')"

# required=true: the same loss fails the build (exit 1), spool or not.
stop_fake "$FAKE_PID"
rc=$(run_kiln req.out run p.yaml --quiet --sink-grace 1s --sink "otlp:endpoint=$URL,required=true")
check "required sink, receiver down: exit 1" test "$rc" = 1
check "required sink: the spool holds the records" grep -q "left in $ROOT/otlp-" req.out
rm -rf "$ROOT"

# ---- cloud-logging -----------------------------------------------------------
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_cloudlogging.py
start_fake "$TMP/gprobe"
G=$PORT
stop_fake "$FAKE_PID"
GURL=http://127.0.0.1:$G/v2/entries:write
export XDG_STATE_HOME=$TMP/state
GROOT=$XDG_STATE_HOME/kiln/spool
rc=$(run_kiln gdown.out run p.yaml --quiet --report gdown.json --sink-grace 1s \
    --sink "cloud-logging:endpoint=$GURL,project=proj-1,batch_records=250,token=$TOKEN")
check "cloud-logging, receiver down: exit 0" test "$rc" = 0
check "cloud-logging: \$XDG_STATE_HOME/kiln/spool" grep -q "left in $GROOT/cloud-logging-[0-9a-f]\{16\}" gdown.out
check "cloud-logging: the spool holds no token" sh -c "! grep -rq -e '$TOKEN' '$GROOT'"
start_fake "$TMP/gcl" --port "$G" --token "$TOKEN"
rc=0; "$KILN" logs flush "$GROOT" >g0.out 2>&1 || rc=$?
check "cloud-logging flush without a token: exit 1, says how to give it" sh -c "test $rc = 1 && grep -q \"need the header 'Authorization', which kiln does not write to the spool: give it with --sink cloud-logging:token=TOKEN (or \\\$GOOGLE_OAUTH_ACCESS_TOKEN)\" g0.out"
rc=0; GOOGLE_OAUTH_ACCESS_TOKEN=$TOKEN "$KILN" logs flush "$GROOT" >g1.out 2>&1 || rc=$?
check "cloud-logging flush with GOOGLE_OAUTH_ACCESS_TOKEN: exit 0" test "$rc" = 0
curl -sf "http://127.0.0.1:$G/_records" >gcl.json
if python3 "$CHECK" gcl.json "$(jget gdown.json 'j["id"]')" a=a:2000 b=b:1000 >gcl.check 2>&1; then
    pass "cloud-logging flush: every line once, in order"
else
    fail "cloud-logging flush: every line once, in order"; cat gcl.check g1.out
fi
finish
