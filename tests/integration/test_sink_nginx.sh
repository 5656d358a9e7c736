#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The remote sinks' wire format as a real server received it: nginx
# (Debian nginx-light, scripts/deps.d/ship) keeps every request body in a
# file (client_body_in_file_only) and logs the method, path and headers as
# JSON; the bodies are then checked here, not by our Python fakes:
#   otlp (gzip=true, headers=): POST /v1/logs, Content-Type
#     application/json, Content-Encoding gzip, the Authorization and
#     X-Scope-OrgID headers given; the body gunzips to OTLP/HTTP JSON
#     (resourceLogs / resource attributes service.name, cicd.pipeline.run.id
#     / scopeLogs / logRecords with timeUnixNano, observedTimeUnixNano,
#     severityNumber, severityText, body.stringValue, attributes
#     cicd.pipeline.task.name and the dedup key kiln.record.id, unique);
#   cloud-logging (gzip=true, token=): POST /v2/entries:write, Bearer token;
#     logName, entries with insertId (unique), textPayload, severity,
#     timestamp (9 fractional digits), resource build/{build_id,project_id},
#     labels step_id and stream;
#   a spooled batch sent by `kiln logs flush` carries the header given to
#     flush again (the spool kept none).
# Every line arrives exactly once and in order, stderr as WARNING.
# nginx missing: skipped, unless KILN_REQUIRE_SHARED=1 (.ci/run), which makes
# that a failure.
source "$(dirname "$0")/lib.sh"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
    if [ "${KILN_REQUIRE_SHARED:-0}" = 1 ]; then
        echo "FAIL - nginx is missing (KILN_REQUIRE_SHARED=1: scripts/deps.d/ship installs nginx-light)"
        exit 1
    fi
    skip_test "nginx is missing (apt-get install nginx-light; KILN_REQUIRE_SHARED=1 makes this a failure)"
fi

N=$TMP/ngx
mkdir -p "$N/cap" "$N/tmp"
NP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=; [ "$(id -u)" = 0 ] && user="user root;"
cat >"$N/nginx.conf" <<EOF
$user
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log;
events { worker_connections 64; }
http {
  client_body_temp_path $N/cap;
  proxy_temp_path $N/tmp/proxy;
  fastcgi_temp_path $N/tmp/fcgi;
  uwsgi_temp_path $N/tmp/uwsgi;
  scgi_temp_path $N/tmp/scgi;
  client_max_body_size 64m;
  log_format cap escape=json '{"m":"\$request_method","u":"\$request_uri","s":"\$status",'
      '"ct":"\$content_type","ce":"\$http_content_encoding","auth":"\$http_authorization",'
      '"tenant":"\$http_x_scope_orgid","file":"\$request_body_file"}';
  server {
    listen 127.0.0.1:$NP;
    # Every body kept in a file under $N/cap, then a 200 '{}'.
    client_body_in_file_only on;
    location = /v1/logs { access_log $N/cap.jsonl cap; proxy_pass http://127.0.0.1:$NP/__ok; }
    location = /v2/entries:write { access_log $N/cap.jsonl cap; proxy_pass http://127.0.0.1:$NP/__ok; }
    location = /__ok { client_body_in_file_only off; access_log off; default_type application/json; return 200 '{}'; }
  }
}
EOF
"$NGINX" -p "$N" -c "$N/nginx.conf" -e "$N/error.log" || { fail "nginx did not start"; cat "$N/error.log"; finish; }
wait_for 30 test -s "$N/nginx.pid"
FAKE_PIDS+=("$(cat "$N/nginx.pid")")   # lib.sh's cleanup stops it
# The warm-up goes to /__ok, which logs nothing: nginx writes a request's
# access-log line after its answer has gone out, so a logged warm-up could
# land in the capture after it was emptied.
check "nginx answers" wait_for 30 curl -sf -o /dev/null -d '{}' "http://127.0.0.1:$NP/__ok"

cat >p.yaml <<'Y'
steps:
- id: out
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 1500); do echo "out $i"; done']
- id: err
  entrypoint: bash
  args: [-c, 'for i in $(seq 1 500); do echo "err $i ünï" >&2; done']
Y

# checker KIND BUILD_ID: every captured request of this run, checked.
cat >check.py <<'PY'
import gzip, json, re, sys
kind, build, cap = sys.argv[1], sys.argv[2], sys.argv[3]
want_auth, want_tenant = sys.argv[4], sys.argv[5]
reqs = [json.loads(l) for l in open(cap) if l.strip()]
assert reqs, "no request captured"
lines = {"out": [], "err": []}
keys = set()
for r in reqs:
    assert r["m"] == "POST", r
    assert r["s"] == "200", r
    assert r["ct"] == "application/json", r
    assert r["ce"] == "gzip", r
    assert r["auth"] == want_auth, r
    assert r["tenant"] == want_tenant, r
    raw = open(r["file"], "rb").read()
    assert raw[:2] == b"\x1f\x8b", "body is not gzip: %r" % raw[:10]
    doc = json.loads(gzip.decompress(raw))
    if kind == "otlp":
        assert r["u"] == "/v1/logs", r
        for rl in doc["resourceLogs"]:
            attrs = {a["key"]: a["value"] for a in rl["resource"]["attributes"]}
            assert attrs["service.name"] == {"stringValue": "kiln"}, attrs
            assert attrs["cicd.pipeline.run.id"] == {"stringValue": build}, attrs
            for sl in rl["scopeLogs"]:
                assert sl["scope"]["name"] == "kiln", sl["scope"]
                for rec in sl["logRecords"]:
                    for k in ("timeUnixNano", "observedTimeUnixNano"):
                        assert re.fullmatch(r"[0-9]{19}", rec[k]), rec
                    a = {x["key"]: x["value"] for x in rec["attributes"]}
                    key = a["kiln.record.id"]["stringValue"]
                    assert key not in keys, "dedup key twice: " + key
                    keys.add(key)
                    step = a.get("cicd.pipeline.task.name", {}).get("stringValue")
                    if step in lines:
                        sev = (rec["severityNumber"], rec["severityText"])
                        assert sev == ((9, "INFO") if step == "out" else (13, "WARN")) \
                            or step == "err" and sev[0] in (13, 17), sev
                        assert a["log.iostream"]["stringValue"] == ("stdout" if step == "out" else "stderr"), a
                        lines[step].append(rec["body"]["stringValue"])
    else:
        assert r["u"] == "/v2/entries:write", r
        assert doc["logName"] == "projects/proj-1/logs/cloudbuild", doc["logName"]
        for e in doc["entries"]:
            assert e["insertId"] not in keys, "insertId twice: " + e["insertId"]
            keys.add(e["insertId"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", e["timestamp"]), e
            res = e.get("resource") or doc.get("resource")
            assert res["type"] == "build", res
            assert res["labels"] == {"build_id": build, "project_id": "proj-1"}, res
            step = e.get("labels", {}).get("step_id")
            if step in lines:
                assert e["severity"] == ("INFO" if step == "out" else "WARNING"), e
                assert e["labels"]["stream"] == ("stdout" if step == "out" else "stderr"), e
                lines[step].append(e["textPayload"])
assert lines["out"] == ["out %d" % i for i in range(1, 1501)], lines["out"][:3]
assert lines["err"] == ["err %d ünï" % i for i in range(1, 501)], lines["err"][:3]
print("ok", len(reqs), "requests,", len(keys), "records")
PY
# run_check NAME KIND AUTH TENANT: the captured requests since the last one.
# nginx logs a request after answering it, so kiln may have exited before
# the last line is in the capture: the check is retried for up to 30 s (a
# wrong request fails every try; a missing one only until it is logged).
run_check() {
    local id; id=$(jget "$1.json" 'j["id"]')
    check_once() { python3 check.py "$2" "$id" "$N/cap.jsonl" "$3" "$4" >"$1.check" 2>&1; }
    if wait_for 30 check_once "$@"; then
        pass "$1: nginx's capture: $(cat "$1.check")"
    else
        fail "$1: nginx's capture"; cat "$1.check"
    fi
    : >"$N/cap.jsonl"
}

rc=$(run_kiln otlp.out run p.yaml --quiet --report otlp.json \
    --sink "otlp:endpoint=http://127.0.0.1:$NP/v1/logs,gzip=true,batch_records=400,headers=Authorization=Bearer tok-1;X-Scope-OrgID=tenant-1")
check "otlp: exit 0" test "$rc" = 0
check "otlp: nothing lost" test "$(jget otlp.json 'len(j.get("logLoss", []))')" = 0
run_check otlp otlp "Bearer tok-1" tenant-1

rc=$(run_kiln gcl.out run p.yaml --quiet --report gcl.json \
    --sink "cloud-logging:endpoint=http://127.0.0.1:$NP/v2/entries:write,project=proj-1,gzip=true,batch_records=400,token=tok-2")
check "cloud-logging: exit 0" test "$rc" = 0
check "cloud-logging: nothing lost" test "$(jget gcl.json 'len(j.get("logLoss", []))')" = 0
run_check gcl cloud-logging "Bearer tok-2" ""

# Spooled while the receiver is down (a port nobody listens on: the spool's
# url is rewritten to nginx's afterwards, as a receiver that moved back),
# then flushed with the headers given again.
DOWN=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rc=$(run_kiln sp.out run p.yaml --quiet --report sp.json --log-dir logs --sink-grace 1s \
    --sink "otlp:endpoint=http://127.0.0.1:$DOWN/v1/logs,gzip=true,batch_records=400,headers=Authorization=Bearer tok-3;X-Scope-OrgID=tenant-3")
check "spool: exit 0, batches left" sh -c "test $rc = 0 && test -n \"\$(find logs/.spool -name '*.req')\""
check "spool: no credential on disk" sh -c "! grep -rq -e tok-3 -e tenant-3 logs/.spool"
for f in $(find logs/.spool -name '*.req'); do
    python3 - "$f" "$DOWN" "$NP" <<'PY'
import sys
p, a, b = sys.argv[1:]
d = open(p, "rb").read()
open(p, "wb").write(d.replace(b"127.0.0.1:%s" % a.encode(), b"127.0.0.1:%s" % b.encode(), 1))
PY
done
rc=0; "$KILN" logs flush logs/.spool --sink "otlp:headers=Authorization=Bearer tok-3;X-Scope-OrgID=tenant-3" >spf.out 2>&1 || rc=$?
check "spool: flush exit 0" test "$rc" = 0
run_check sp otlp "Bearer tok-3" tenant-3
finish
