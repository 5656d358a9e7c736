#!/usr/bin/env bash
# The cloud-logging sink against tests/fakes/fake_cloudlogging.py: entries as
# Cloud Build writes them (logName, resource build/build_id/project_id,
# labels, textPayload, severities, nanosecond timestamps, insertId); every
# line once and in order under 429/500/close/down faults (insertId
# deduplicates the resent batches); tokens from `token`, the environment, a
# service-account key file (a JWT signed with its key, checked by the fake
# with openssl) and the metadata server; a 401 is a loss with Google's
# message. The fake is checked with Google's @google-cloud/logging when npm
# is reachable.
source "$(dirname "$0")/lib.sh"
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_cloudlogging.py
CHECK=$KILN_SOURCE_DIR/tests/integration/shipcheck.py
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.pem 2>/dev/null
openssl pkey -in sa.pem -pubout -out sa.pub
start_fake "$TMP/cl" --token tok-123 --jwt-pubkey "$TMP/sa.pub"
BASE=http://127.0.0.1:$PORT
URL=$BASE/v2/entries:write
fault() { curl -sf -XPOST "$BASE/_fault" -d "$1" >/dev/null; }
records() { curl -sf "$BASE/_records" >"$1"; }

cat >p.yaml <<'Y'
steps:
- id: a
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 1500); do echo "a $i"; done']
- id: b
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 1000); do echo "b $i" >&2; done']
  waitFor: ['-']
Y
# run_case NAME FAULT SINK_OPTIONS [ENV...]
run_case() {
    local name=$1 f=$2 opts=$3; shift 3
    fault "$f"
    local rc=0
    env "$@" "$KILN" run p.yaml --quiet --report "$name.json" \
        --sink "cloud-logging:endpoint=$URL,project=proj-1,batch_records=200,timeout=2s$opts" >"$name.out" 2>&1 || rc=$?
    check "$name: exit 0" test "$rc" = 0
    fault '{"mode":"ok"}'
    records "$name.rec.json"
    if python3 "$CHECK" "$name.rec.json" "$(jget "$name.json" 'j["id"]')" a=a:1500 b=b:1000 >"$name.check" 2>&1; then
        pass "$name: every line once, in order"
    else
        fail "$name: every line once, in order"; sed 's/^/  /' "$name.check" "$name.out" | tail -8
    fi
    check "$name: no loss reported" test "$(jget "$name.json" 'len(j.get("logLoss", []))')" = 0
}

run_case token '{"mode":"ok"}' ",token=tok-123"
check "entries look like Cloud Build's" python3 -c '
import json,sys,re
d=json.load(open(sys.argv[1])); bid=sys.argv[2]
r=[x for x in d["records"] if x["run_id"]==bid]
a=[x for x in r if x["step"]=="a"][0]; b=[x for x in r if x["step"]=="b"][0]
assert a["log_name"]=="projects/proj-1/logs/cloudbuild", a
assert a["resource_type"]=="build" and a["project"]=="proj-1", a
assert a["stream"]=="stdout" and a["severity"]=="INFO" and a["body"]=="a 1", a
assert b["stream"]=="stderr" and b["severity"]=="WARNING", b
assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$", a["timestamp"]), a
assert re.match(r"^[0-9a-f]{16}-\d+-\d+-\d+$", a["key"]), a
' token.rec.json "$(jget token.json 'j["id"]')"
check "the token is not in the console output" lacks_line token.out tok-123
run_case env429 '{"mode":"429","count":3,"retry_after":1}' "" GOOGLE_OAUTH_ACCESS_TOKEN=tok-123
run_case r500 '{"mode":"500","count":3}' ",token=tok-123"
run_case close '{"mode":"close","count":3}' ",token=tok-123,gzip=true"
run_case down '{"mode":"down","seconds":3}' ",token=tok-123"

# A service-account key file: JWT grant at the fake's /token.
python3 - "$BASE/token" <<'PY'
import json, sys
json.dump({"type": "service_account", "client_email": "kiln@proj-1.iam.gserviceaccount.com",
           "private_key": open("sa.pem").read(), "token_uri": sys.argv[1]}, open("sa.json", "w"))
PY
run_case keyfile '{"mode":"ok"}' "" GOOGLE_APPLICATION_CREDENTIALS="$TMP/sa.json" GOOGLE_OAUTH_ACCESS_TOKEN=
check "keyfile: the requests carried the issued token" grep -q '"path": "/token".*"status": 200' "$TMP/cl/requests.jsonl"
# The metadata server (GCE_METADATA_HOST, as Google's libraries read it).
run_case metadata '{"mode":"ok"}' "" GCE_METADATA_HOST=127.0.0.1:$PORT GOOGLE_OAUTH_ACCESS_TOKEN= GOOGLE_APPLICATION_CREDENTIALS=
check "metadata: the fake's metadata endpoint was asked" grep -q '"path": "/computeMetadata/v1/instance/service-accounts/default/token".*"status": 200' "$TMP/cl/requests.jsonl"

# A wrong token: 401 for every batch; the build stands, logLoss has
# Google's message.
rc=0
"$KILN" run p.yaml --quiet --report bad.json --sink "cloud-logging:endpoint=$URL,project=proj-1,token=wrong" >bad.out 2>&1 || rc=$?
check "401: exit 0" test "$rc" = 0
check "401: every line reported lost with the receiver's message" python3 -c '
import json,sys
l=json.load(open(sys.argv[1]))["logLoss"]
assert sum(x["lines"] for x in l)==2500, l
assert all("HTTP 401: Request had invalid authentication credentials" in x["reason"] for x in l), l
' bad.json

# A long line: kiln's framer passes it on in pieces (partial records), and
# a piece over 256 KiB would become linked split entries: no entry is over
# the limit and the pieces make the line again.
printf 'steps:\n- id: long\n  entrypoint: bash\n  args: [-c, "head -c 3000000 /dev/zero | tr \\"\\\\\\\\0\\" x; echo"]\n' >long.yaml
"$KILN" run long.yaml --quiet --report long.json --sink "cloud-logging:endpoint=$URL,project=proj-1,token=tok-123" >long.out 2>&1
records long.rec.json
check "a 3000000-byte line: entries of at most 256000 bytes that make the line again" python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); bid=sys.argv[2]
r=[x for x in d["records"] if x["run_id"]==bid and x["step"]=="long"]
assert r and all(len(x["body"])<=256000 for x in r), [len(x["body"]) for x in r]
assert "".join(x["body"] for x in r)=="x"*3000000, sum(len(x["body"]) for x in r)
sp=[x["split"] for x in r if x["split"]]
print("split entries:", len(sp))
' long.rec.json "$(jget long.json 'j["id"]')"

# The fake against Google's client library for Node.
if client=$(bash "$KILN_SOURCE_DIR/scripts/cloudlogging-client.sh" 2>client.err); then
    nrc=0
    node "$KILN_SOURCE_DIR/tests/fakes/cloudlogging_client_check.js" "$client" "$PORT" tok-123 >node.out 2>&1 || nrc=$?
    check "@google-cloud/logging: writes without error" test "$nrc" = 0 || sed 's/^/  /' node.out
    records node.json
    check "@google-cloud/logging: the fake kept its entries" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
r=[x for x in d["records"] if x["log_name"]=="projects/proj-node/logs/node-check"]
assert [x["body"] for x in r]==["one","two"], r
assert r[1]["severity"]=="WARNING", r
' node.json
else
    if [ "${KILN_REQUIRE_NPM:-0}" = 1 ]; then fail "@google-cloud/logging: $(cat client.err)"; else echo "skip - @google-cloud/logging: $(cat client.err)"; fi
fi
finish
