#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The fake Kubernetes API server (tests/fakes/fake_k8s.py), checked against
# real clients, so that tests which use it test something real.
#
# Part 1 speaks raw HTTP with curl (always runs: it is what a libcurl client
# such as the k8s-deploy plugin sees): auth, discovery, server-side apply and
# its errors, conflicts, get/list/watch, the simulated rollout and its
# failure, delete, the request log, SIGTERM.
# Part 2 runs real kubectl binaries and asserts what a user sees: kubectl
# 1.32 from PATH and Debian's kubectl 1.20 fetched privately by
# scripts/kubectl.sh (called with a PATH that has no kubectl). Those run over
# HTTPS with a bearer token (a throwaway certificate from openssl), because
# kubectl never sends a token over plain HTTP; a plain-HTTP server is checked
# for exactly that. A client that cannot be had is skipped with the reason;
# KILN_REQUIRE_KUBECTL=1 makes that a failure.
#
# Environment (set by ctest): KILN, KILN_SOURCE_DIR.
source "$(dirname "$0")/lib.sh"

FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_k8s.py
KUBECTL_SH=$KILN_SOURCE_DIR/scripts/kubectl.sh
TOKEN=kiln-test-token-$RANDOM$RANDOM
# start_fake, stop_fake: lib.sh
# log_any LOG EXPR: some request in LOG satisfies EXPR (Python over `l`)
log_any() {
    python3 -c 'import json,sys
ls=[json.loads(x) for x in open(sys.argv[1])]
sys.exit(0 if any(eval(sys.argv[2]) for l in ls) else 1)' "$1" "$2"
}
# is FILE EXPR VALUE: the JSON in FILE has EXPR (Python over `j`) == VALUE
is() { local v; v=$(jget "$1" "$2" 2>&1) || true; [ "$v" = "$3" ] || { echo "  $2 is '$v', not '$3'"; return 1; }; }

command -v curl >/dev/null || { echo "FAIL - curl is needed to check the fake over raw HTTP"; exit 1; }

cat >"$TMP/web.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: x
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
EOF

# ---------------------------------------------------------------------------
echo "# part 1: raw HTTP (curl)"
R=$TMP/raw
# A 2 s rollout, so that a loaded machine still sees its stages one by one.
start_fake "$R" --token "$TOKEN" --namespaces default,kube-system,x --rollout-seconds 2
RAW_PID=$FAKE_PID
BASE=http://127.0.0.1:$PORT
check "port file holds a port number" grep -qxE '[0-9]+' "$R/port"
# api METHOD PATH [CONTENT-TYPE FILE]: body to $TMP/r.json, prints the status
api() {
    local m=$1 p=$2; shift 2
    local a=(-s -o "$TMP/r.json" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $TOKEN")
    [ $# -lt 2 ] || a+=(-H "Content-Type: $1" --data-binary "@$2")
    curl "${a[@]}" "$BASE$p"
}
APPLY=application/apply-patch+yaml
DEP=/apis/apps/v1/namespaces/x/deployments

code=$(curl -s -o "$TMP/r.json" -w '%{http_code}' "$BASE/version")
check "no token: 401" test "$code" = 401
check "no token: the real Unauthorized Status" is "$TMP/r.json" 'json.dumps(j, sort_keys=True)' \
    '{"apiVersion": "v1", "code": 401, "kind": "Status", "message": "Unauthorized", "metadata": {}, "reason": "Unauthorized", "status": "Failure"}'
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "$BASE/api")
check "wrong token: 401" test "$code" = 401
check "GET /version: 200, v1.32" test "$(api GET /version)" = 200
check "GET /version: gitVersion" is "$TMP/r.json" 'j["gitVersion"]' v1.32.0+kiln-fake
api GET /apis >/dev/null
check "GET /apis: apps, networking.k8s.io, batch" is "$TMP/r.json" '[g["preferredVersion"]["groupVersion"] for g in j["groups"]]' \
    "['apps/v1', 'networking.k8s.io/v1', 'batch/v1']"
api GET /apis/apps/v1 >/dev/null
check "GET /apis/apps/v1: deployments, short name deploy" is "$TMP/r.json" \
    '[(r["name"], r.get("shortNames")) for r in j["resources"]][0]' "('deployments', ['deploy'])"
check "GET /apis/apps/v1: deployments/status" is "$TMP/r.json" '"deployments/status" in [r["name"] for r in j["resources"]]' True
api GET /api/v1 >/dev/null
check "GET /api/v1: namespaces are cluster-scoped" is "$TMP/r.json" \
    '[r["namespaced"] for r in j["resources"] if r["name"] == "namespaces"]' "[False]"
check "GET /openapi/v2: 404" test "$(api GET /openapi/v2)" = 404

check "apply with merge-patch: 415" test "$(api PATCH "$DEP/web?fieldManager=tester" application/merge-patch+json "$TMP/web.yaml")" = 415
check "415: reason UnsupportedMediaType" is "$TMP/r.json" 'j["reason"]' UnsupportedMediaType
check "apply without fieldManager: 422" test "$(api PATCH "$DEP/web" $APPLY "$TMP/web.yaml")" = 422
check "422: the real message" is "$TMP/r.json" 'j["message"]' \
    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
sed 's/namespace: x/namespace: nope/' "$TMP/web.yaml" >"$TMP/nope.yaml"
check "apply into a missing namespace: 404" \
    test "$(api PATCH "/apis/apps/v1/namespaces/nope/deployments/web?fieldManager=tester" $APPLY "$TMP/nope.yaml")" = 404
check "404: namespaces \"nope\" not found" is "$TMP/r.json" '(j["message"], j["details"])' \
    "('namespaces \"nope\" not found', {'name': 'nope', 'kind': 'namespaces'})"
check "apply with another namespace in the body: 400" test "$(api PATCH "$DEP/web?fieldManager=tester" $APPLY "$TMP/nope.yaml")" = 400
check "400: namespace message" is "$TMP/r.json" 'j["message"]' \
    "the namespace of the provided object does not match the namespace sent on the request"
check "apply with another name in the URL: 400" test "$(api PATCH "$DEP/web2?fieldManager=tester" $APPLY "$TMP/web.yaml")" = 400
check "400: name message" is "$TMP/r.json" 'j["message"]' "the name of the object (web) does not match the name on the URL (web2)"
check "apply a Deployment to services: 400" \
    test "$(api PATCH "/api/v1/namespaces/x/services/web?fieldManager=tester" $APPLY "$TMP/web.yaml")" = 400
check "400: invalid object type" is "$TMP/r.json" 'j["message"]' "invalid object type: apps/v1, Kind=Deployment"

python3 -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$TMP/web.yaml" >"$TMP/web.json"
check "apply (JSON body) creates: 201" test "$(api PATCH "$DEP/web?fieldManager=tester&force=false" $APPLY "$TMP/web.json")" = 201
check "created: generation 1, uid, creationTimestamp" is "$TMP/r.json" \
    '(j["metadata"]["generation"], len(j["metadata"]["uid"]) == 36, j["metadata"]["creationTimestamp"][-1])' "(1, True, 'Z')"
check "created: managedFields Apply by tester" is "$TMP/r.json" \
    '[(m["manager"], m["operation"], m["apiVersion"]) for m in j["metadata"]["managedFields"]]' "[('tester', 'Apply', 'apps/v1')]"
# wait_for limits here (60 s) only catch a fake that never gets there.
wait_for 60 sh -c "curl -s -H 'Authorization: Bearer $TOKEN' $BASE$DEP/web | grep -q NewReplicaSetAvailable" || true
api GET "$DEP/web" >/dev/null
check "rollout 1 done: observedGeneration 1, 2 of 2 available" is "$TMP/r.json" \
    '[j["status"].get(k) for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")]' \
    "[1, 2, 2, 2, 2]"
check "rollout 1 done: conditions Available, Progressing" is "$TMP/r.json" \
    '[(c["type"], c["status"], c["reason"]) for c in j["status"]["conditions"]]' \
    "[('Available', 'True', 'MinimumReplicasAvailable'), ('Progressing', 'True', 'NewReplicaSetAvailable')]"
RV1=$(jget "$TMP/r.json" 'j["metadata"]["resourceVersion"]' || true)
check "re-apply, nothing changed: 200" test "$(api PATCH "$DEP/web?fieldManager=tester" $APPLY "$TMP/web.yaml")" = 200
check "nothing changed: same resourceVersion and generation" is "$TMP/r.json" \
    '(j["metadata"]["resourceVersion"], j["metadata"]["generation"])' "('$RV1', 1)"

api GET "$DEP?fieldSelector=metadata.name%3Dweb" >/dev/null
check "list: DeploymentList with one item, without kind" is "$TMP/r.json" \
    '(j["kind"], len(j["items"]), "kind" in j["items"][0], j["metadata"]["resourceVersion"].isdigit())' \
    "('DeploymentList', 1, False, True)"
LIST_RV=$(jget "$TMP/r.json" 'j["metadata"]["resourceVersion"]' || true)
api GET "$DEP?fieldSelector=metadata.name%3Dother" >/dev/null
check "list: fieldSelector filters" is "$TMP/r.json" 'len(j["items"])' 0

# Two watches while the image changes: one from now (current state first),
# one from the list's resourceVersion (changes only, as on a real server).
# The image changes once both watches are answered; they last long enough
# (12 s) for the 2 s rollout to be seen to its end on a loaded machine.
W="$BASE$DEP?watch=true&fieldSelector=metadata.name%3Dweb&timeoutSeconds=12"
curl -sN -D "$TMP/watch.h" -H "Authorization: Bearer $TOKEN" "$W" >"$TMP/watch1.out" & W1=$!
curl -sN -D "$TMP/watch2.h" -H "Authorization: Bearer $TOKEN" "$W&resourceVersion=$LIST_RV" >"$TMP/watch2.out" & W2=$!
wait_for 60 test -s "$TMP/watch.h" -a -s "$TMP/watch2.h" || true
sed 's/nginx:1.25/nginx:1.26/' "$TMP/web.yaml" >"$TMP/web2.yaml"
check "apply a new image: 200" test "$(api PATCH "$DEP/web?fieldManager=tester" $APPLY "$TMP/web2.yaml")" = 200
check "new image: generation 2, status not yet observed" is "$TMP/r.json" \
    '(j["metadata"]["generation"], j["status"]["observedGeneration"])' "(2, 1)"
rc1=0; wait "$W1" || rc1=$?
rc2=0; wait "$W2" || rc2=$?
check "watch ends after timeoutSeconds, cleanly (curl rc $rc1/$rc2)" test "$rc1/$rc2" = 0/0
check "watch is chunked" grep -qi '^transfer-encoding: chunked' "$TMP/watch.h"
first=$(python3 -c "import json,sys; e=[json.loads(x) for x in open(sys.argv[1])]; print(e[0]['type'], e[0]['object']['metadata']['generation'])" "$TMP/watch1.out" 2>&1 || true)
check "watch 1 starts with ADDED of generation 1 ($first)" test "$first" = "ADDED 1"
check "watch 2 (from the list's resourceVersion) has no ADDED" lacks_line "$TMP/watch2.out" '"type": "ADDED"'
last=$(python3 -c "import json,sys; e=[json.loads(x) for x in open(sys.argv[1])][-1]; o=e['object']; print(e['type'], o['metadata']['generation'], o['status']['observedGeneration'], o['status']['updatedReplicas'], o['status']['availableReplicas'])" "$TMP/watch2.out" 2>&1 || true)
check "watch 2 ends with the rollout done: MODIFIED gen 2, observed 2, 2 updated, 2 available ($last)" test "$last" = "MODIFIED 2 2 2 2"
check "watch 2: several MODIFIED steps" test "$(grep -c '"MODIFIED"' "$TMP/watch2.out")" -ge 3

cat >"$TMP/other.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x}
spec:
  replicas: 3
EOF
check "another manager, replicas differ: 409" test "$(api PATCH "$DEP/web?fieldManager=other" $APPLY "$TMP/other.yaml")" = 409
check "409: the real conflict message" is "$TMP/r.json" '(j["reason"], j["message"])' \
    "('Conflict', 'Apply failed with 1 conflict: conflict with \"tester\": .spec.replicas')"
check "409: cause FieldManagerConflict on .spec.replicas" is "$TMP/r.json" '[(c["type"], c["field"]) for c in j["details"]["causes"]]' \
    "[('FieldManagerConflict', '.spec.replicas')]"
sed 's/replicas: 3/replicas: 2/' "$TMP/other.yaml" >"$TMP/same.yaml"
check "another manager, same value: 200 (shared)" test "$(api PATCH "$DEP/web?fieldManager=other" $APPLY "$TMP/same.yaml")" = 200
check "another manager with force=true: 200" test "$(api PATCH "$DEP/web?fieldManager=other&force=true" $APPLY "$TMP/other.yaml")" = 200
check "forced: replicas 3, generation 3, image kept from tester" is "$TMP/r.json" \
    '(j["spec"]["replicas"], j["metadata"]["generation"], j["spec"]["template"]["spec"]["containers"][0]["image"])' "(3, 3, 'nginx:1.26')"
check "forced: managers tester and other" is "$TMP/r.json" \
    '[m["manager"] for m in j["metadata"]["managedFields"] if m["operation"] == "Apply"]' "['tester', 'other']"

sed 's/name: web$/name: bad/; s/app: web/app: bad/g; s#nginx:1.25#example.invalid/fail-rollout:1#' "$TMP/web.yaml" >"$TMP/bad.yaml"
check "apply a fail-rollout image: 201" test "$(api PATCH "$DEP/bad?fieldManager=tester" $APPLY "$TMP/bad.yaml")" = 201
wait_for 60 sh -c "curl -s -H 'Authorization: Bearer $TOKEN' $BASE$DEP/bad | grep -q ProgressDeadlineExceeded" || true
api GET "$DEP/bad" >/dev/null
check "fail-rollout: Progressing False, ProgressDeadlineExceeded" is "$TMP/r.json" \
    '[(c["status"], c["reason"]) for c in j["status"]["conditions"] if c["type"] == "Progressing"]' "[('False', 'ProgressDeadlineExceeded')]"
check "fail-rollout: timed-out message names the ReplicaSet" sh -c "python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print([c[\"message\"] for c in j[\"status\"][\"conditions\"] if c[\"type\"] == \"Progressing\"][0])' '$TMP/r.json' | grep -qE '^ReplicaSet \"bad-[a-z0-9]{10}\" has timed out progressing\.$'"
check "fail-rollout: 2 updated, none available" is "$TMP/r.json" \
    '(j["status"].get("updatedReplicas"), j["status"].get("availableReplicas", 0), j["status"].get("unavailableReplicas"))' "(2, 0, 2)"

check "GET a missing deployment: 404" test "$(api GET "$DEP/nope")" = 404
check "404: deployments.apps \"nope\" not found, details" is "$TMP/r.json" '(j["message"], j["details"])' \
    "('deployments.apps \"nope\" not found', {'name': 'nope', 'group': 'apps', 'kind': 'deployments'})"
check "GET a missing service: core wording" sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN' $BASE/api/v1/namespaces/x/services/nope)\" = '{\"kind\": \"Status\", \"apiVersion\": \"v1\", \"metadata\": {}, \"status\": \"Failure\", \"message\": \"services \\\"nope\\\" not found\", \"reason\": \"NotFound\", \"details\": {\"name\": \"nope\", \"kind\": \"services\"}, \"code\": 404}' ]"
check "DELETE: 200" test "$(api DELETE "$DEP/bad")" = 200
check "DELETE: Success Status" is "$TMP/r.json" '(j["status"], j["details"]["name"], j["details"]["kind"])' "('Success', 'bad', 'deployments')"
check "deleted: GET is 404" test "$(api GET "$DEP/bad")" = 404

L=$R/requests.jsonl
check "log: the apply PATCH, its Content-Type and fieldManager" log_any "$L" \
    'l["method"] == "PATCH" and l["path"] == "/apis/apps/v1/namespaces/x/deployments/web" and l["content_type"] == "application/apply-patch+yaml" and l["query"].get("fieldManager") == "tester" and l["authorization"] is True and l["body"]["kind"] == "Deployment" and l["status"] == 201'
check "log: the request without a token" log_any "$L" 'l["path"] == "/version" and l["authorization"] is False and l["status"] == 401'
check "log: the watch, query parsed" log_any "$L" 'l["query"].get("watch") == "true" and l["query"].get("fieldSelector") == "metadata.name=web" and l["status"] == 200'
check "log: every line has the documented keys" python3 -c 'import json,sys
keys={"method","path","query","content_type","authorization","body","status"}
sys.exit(0 if all(keys <= set(json.loads(x)) for x in open(sys.argv[1])) else 1)' "$L"
check "log: the token never appears" lacks_line "$L" "$TOKEN"
check "SIGTERM: the fake exits 0" stop_fake "$RAW_PID"

# ---------------------------------------------------------------------------
echo "# part 2: real kubectl"
# A PATH in which no directory holds a kubectl: each directory that does is
# replaced by a copy made of symbolic links to everything else in it.
path_without_kubectl() {
    local d n=0 out="" s
    local IFS=:
    for d in $PATH; do
        [ -d "$d" ] || continue
        if [ -e "$d/kubectl" ]; then
            n=$((n + 1)); s=$TMP/nokubectl/$n
            mkdir -p "$s"
            find "$d" -mindepth 1 -maxdepth 1 ! -name kubectl -exec ln -s {} "$s/" \;
            d=$s
        fi
        out=${out:+$out:}$d
    done
    echo "$out"
}
CLIENTS=()
if k=$(env -u KUBECTL bash "$KUBECTL_SH" 2>"$TMP/why1"); then CLIENTS+=("$k"); else
    echo "skip - kubectl from scripts/kubectl.sh: $(cat "$TMP/why1")"; fi
if k=$(env -u KUBECTL PATH="$(path_without_kubectl)" bash "$KUBECTL_SH" 2>"$TMP/why2"); then
    [ "${#CLIENTS[@]}" -gt 0 ] && [ "${CLIENTS[0]}" = "$k" ] || CLIENTS+=("$k")
else
    echo "skip - Debian's kubectl (scripts/kubectl.sh without kubectl on PATH): $(cat "$TMP/why2")"
fi
if [ "${#CLIENTS[@]}" = 0 ]; then
    if [ "${KILN_REQUIRE_KUBECTL:-0}" = 1 ]; then
        fail "no kubectl could be had (KILN_REQUIRE_KUBECTL=1)"
    else
        echo "skip - kubectl part: no kubectl could be had; the fake was checked with curl only"
    fi
fi

TLS=0
if command -v openssl >/dev/null && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TMP/tls.key" -out "$TMP/tls.crt" -days 1 -subj /CN=kiln-fake-k8s \
        -addext subjectAltName=IP:127.0.0.1 >"$TMP/openssl.out" 2>&1; then
    TLS=1
else
    echo "skip - HTTPS and token checks with kubectl: no openssl to make a certificate; kubectl runs over plain HTTP"
fi

# kubeconfig FILE URL [CA]: users tester (the token) and intruder (a wrong one)
kubeconfig() {
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: $2
${3:+    certificate-authority: $3}
users:
- name: tester
  user: {token: $TOKEN}
- name: intruder
  user: {token: not-$TOKEN}
contexts:
- name: fake
  context: {cluster: fake, user: tester}
- name: intruder
  context: {cluster: fake, user: intruder}
current-context: fake
EOF
}

cat >"$TMP/app.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: x
---
EOF
cat "$TMP/web.yaml" >>"$TMP/app.yaml"
cat >>"$TMP/app.yaml" <<'EOF'
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: x
spec:
  selector: {app: web}
  ports:
  - port: 80
EOF
sed 's/nginx:1.25/nginx:1.26/' "$TMP/app.yaml" >"$TMP/app2.yaml"
sed 's/replicas: 3/replicas: 5/' "$TMP/other.yaml" >"$TMP/other5.yaml"

n=0
for K in "${CLIENTS[@]}"; do
    n=$((n + 1))
    V=$("$K" version --client 2>/dev/null | grep -o 'v1\.[0-9]*' | head -n 1 || true)
    C="kubectl $V"
    echo "# $C ($K)"
    D=$TMP/kubectl$n
    if [ "$TLS" = 1 ]; then
        start_fake "$D" --token "$TOKEN" --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key"
        kubeconfig "$D/kubeconfig" "https://127.0.0.1:$PORT" "$TMP/tls.crt"
    else
        start_fake "$D"
        kubeconfig "$D/kubeconfig" "http://127.0.0.1:$PORT"
    fi
    KPID=$FAKE_PID
    k() { KUBECONFIG=$D/kubeconfig "$K" --cache-dir="$D/cache" "$@"; }
    # kout NAME ARGS...: run kubectl, output to $D/NAME.out, print the exit code
    kout() { local f=$D/$1.out rc=0; shift; k "$@" >"$f" 2>&1 || rc=$?; echo "$rc"; }
    SSA=(apply --server-side --validate=false)

    rc=$(kout apply "${SSA[@]}" --field-manager=tester -f "$TMP/app.yaml")
    check "$C: apply exits 0" test "$rc" = 0
    for line in "namespace/x serverside-applied" "deployment.apps/web serverside-applied" "service/web serverside-applied"; do
        check "$C: apply prints '$line'" grep -qxF "$line" "$D/apply.out"
    done
    rc=$(kout rollout rollout status deployment/web -n x --timeout=120s)
    check "$C: rollout status exits 0" test "$rc" = 0
    check "$C: 'deployment \"web\" successfully rolled out'" grep -qxF 'deployment "web" successfully rolled out' "$D/rollout.out"
    g=$(k get deployment web -n x -o jsonpath='{.metadata.generation}/{.status.observedGeneration}' 2>&1 || true)
    check "$C: generation/observedGeneration 1/1 ($g)" test "$g" = 1/1
    t=$(k get service web -n x -o jsonpath='{.spec.type} {.spec.ports[0].protocol}' 2>&1 || true)
    check "$C: service defaults: $t" test "$t" = "ClusterIP TCP"

    rc=$(kout apply2 "${SSA[@]}" --field-manager=tester -f "$TMP/app2.yaml")
    check "$C: re-apply with a new image" sh -c "[ $rc = 0 ] && grep -qxF 'deployment.apps/web serverside-applied' '$D/apply2.out'"
    rc=$(kout rollout2 rollout status deployment/web -n x --timeout=120s)
    check "$C: second rollout succeeds" sh -c "[ $rc = 0 ] && grep -qxF 'deployment \"web\" successfully rolled out' '$D/rollout2.out'"
    g=$(k get deployment web -n x -o jsonpath='{.metadata.generation}/{.status.observedGeneration} {.spec.template.spec.containers[0].image}' 2>&1 || true)
    check "$C: generation 2, observed 2, new image ($g)" test "$g" = "2/2 nginx:1.26"

    rc=$(kout nope "${SSA[@]}" --field-manager=tester -f "$TMP/nope.yaml")
    check "$C: apply into a missing namespace fails" test "$rc" = 1
    check "$C: 'Error from server (NotFound): namespaces \"nope\" not found'" \
        grep -qxF 'Error from server (NotFound): namespaces "nope" not found' "$D/nope.out"

    rc=$(kout conflict "${SSA[@]}" --field-manager=other -f "$TMP/other5.yaml")
    check "$C: another field manager without --force-conflicts fails" test "$rc" = 1
    check "$C: 'error: Apply failed with 1 conflict: conflict with \"tester\": .spec.replicas'" \
        grep -qxF 'error: Apply failed with 1 conflict: conflict with "tester": .spec.replicas' "$D/conflict.out"
    check "$C: kubectl explains --force-conflicts" has_line "$D/conflict.out" \
        'Please review the fields above--they currently have other managers.'
    rc=$(kout force "${SSA[@]}" --field-manager=other --force-conflicts -f "$TMP/other5.yaml")
    check "$C: with --force-conflicts it succeeds" \
        sh -c "[ $rc = 0 ] && grep -qxF 'deployment.apps/web serverside-applied' '$D/force.out'"
    g=$(k get deployment web -n x -o jsonpath='{.spec.replicas} {.metadata.managedFields[*].manager}' 2>&1 || true)
    check "$C: replicas 5, managers tester and other ($g)" test "$g" = "5 tester other kube-controller-manager"

    rc=$(kout bad "${SSA[@]}" --field-manager=tester -f "$TMP/bad.yaml")
    check "$C: apply a fail-rollout image" test "$rc" = 0
    # --timeout is far above the progress deadline: the message below, not
    # the time taken, shows which one ended the wait.
    rc=$(kout badrollout rollout status deployment/bad -n x --timeout=120s)
    check "$C: rollout status of fail-rollout fails" test "$rc" = 1
    check "$C: 'error: deployment \"bad\" exceeded its progress deadline'" \
        grep -qxF 'error: deployment "bad" exceeded its progress deadline' "$D/badrollout.out"

    if [ "$TLS" = 1 ]; then
        rc=$(kout intruder --cache-dir="$D/cache-intruder" --context intruder get deployments -n x)
        check "$C: a wrong token fails" test "$rc" = 1
        case $V in
            v1.20) want='error: You must be logged in to the server (Unauthorized)' ;;
            *) want='error: You must be logged in to the server (the server has asked for the client to provide credentials)' ;;
        esac
        check "$C: '$want'" grep -qxF "$want" "$D/intruder.out"
        check "$C: the wrong token reached the server and got 401" log_any "$D/requests.jsonl" \
            'l["authorization"] is True and l["status"] == 401'
    fi
    L=$D/requests.jsonl
    check "$C: log has the PATCH with application/apply-patch+yaml and fieldManager=tester" log_any "$L" \
        'l["method"] == "PATCH" and l["path"] == "/apis/apps/v1/namespaces/x/deployments/web" and l["content_type"] == "application/apply-patch+yaml" and l["query"].get("fieldManager") == "tester"'
    check "$C: the requests came from kubectl/$V" log_any "$L" \
        "l['method'] == 'PATCH' and (l['user_agent'] or '').startswith('kubectl/$V.')"
    check "$C: it watched the deployment" log_any "$L" 'l["query"].get("watch") == "true" and l["path"].endswith("/deployments")'
    check "$C: the token never appears in the log" lacks_line "$L" "$TOKEN"
    check "$C: SIGTERM: the fake exits 0" stop_fake "$KPID"

    # Over plain HTTP kubectl sends no token (kubernetes/kubectl#744): a
    # server that wants one refuses it, one that does not serves it.
    start_fake "$D/http" --token "$TOKEN"
    kubeconfig "$D/http/kubeconfig" "http://127.0.0.1:$PORT"
    rc=0; KUBECONFIG=$D/http/kubeconfig "$K" --cache-dir="$D/http/cache" get namespaces >"$D/http/ns.out" 2>&1 || rc=$?
    check "$C: plain HTTP with a token server: refused" \
        sh -c "[ $rc = 1 ] && grep -qF 'error: You must be logged in to the server (' '$D/http/ns.out'"
    check "$C: plain HTTP: no Authorization header was sent" sh -c "! grep -q '\"authorization\": true' '$D/http/requests.jsonl'"
    stop_fake "$FAKE_PID" || true
    start_fake "$D/open"
    kubeconfig "$D/open/kubeconfig" "http://127.0.0.1:$PORT"
    rc=0; KUBECONFIG=$D/open/kubeconfig "$K" --cache-dir="$D/open/cache" get namespaces -o name >"$D/open/ns.out" 2>&1 || rc=$?
    check "$C: plain HTTP without a token: 'namespace/default'" sh -c "[ $rc = 0 ] && grep -qxF namespace/default '$D/open/ns.out'"
    stop_fake "$FAKE_PID" || true
done

check "no fake server is left running" sh -c "! ps -eo args= | grep -F '$FAKE' | grep -v grep | grep -qF -- '$TMP'"
finish
