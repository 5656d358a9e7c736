#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The fake Cloud Run Admin API v2 (tests/fakes/fake_cloudrun.py), checked
# against real Google clients, so that tests which use it test something real.
#
# Part 1 speaks raw HTTP with curl (always runs: it is what a libcurl client
# such as the cloudrun-deploy plugin sends and sees): auth, create/get/list/
# patch/delete, operations and the simulated deploy and its failure,
# validation errors, etags, IAM policies, the request log, SIGTERM.
# Part 2 runs Google's Node.js client, @google-cloud/run (REST mode), from a
# private install made by scripts/cloudrun-client.sh, through
# tests/fakes/cloudrun_client_check.js, and asserts what it returned.
# Part 3 runs gcloud, when installed, for what of it the fake serves: the
# IAM commands of `gcloud run services` (Cloud Run admin v1 IAM methods), and
# the Cloud Run v2 client the SDK bundles (generated GAPIC Python, REST) with
# tests/fakes/cloudrun_gapic_check.py.
# `gcloud run deploy`, `describe` and `list` speak the Knative v1 API on a
# regional host, which the fake does not implement: that is printed as a
# skip. A client that cannot be had is skipped with the reason, and part 1
# still runs; KILN_REQUIRE_CLOUDRUN_CLIENT=1 makes a skip of the Node.js
# client a failure (gcloud stays optional: it cannot be installed from the
# registries the project uses).
#
# Environment (set by ctest): KILN, KILN_SOURCE_DIR.
source "$(dirname "$0")/lib.sh"

FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_cloudrun.py
CHECK_JS=$KILN_SOURCE_DIR/tests/fakes/cloudrun_client_check.js
CLIENT_SH=$KILN_SOURCE_DIR/scripts/cloudrun-client.sh
TOKEN=kiln-test-token-$RANDOM$RANDOM
PROJECT=kiln-test
REGION=us-central1
# start_fake, stop_fake: lib.sh
# log_any LOG EXPR: some request in LOG satisfies EXPR (Python over `l`; a
# line for which EXPR raises does not)
log_any() {
    python3 -c 'import json,sys
def ok(l):
    try:
        return eval(sys.argv[2])
    except Exception:
        return False
sys.exit(0 if any(ok(json.loads(x)) for x in open(sys.argv[1])) else 1)' "$1" "$2"
}
# is FILE EXPR VALUE: the JSON in FILE has EXPR (Python over `j`) == VALUE
is() { local v; v=$(jget "$1" "$2" 2>&1) || true; [ "$v" = "$3" ] || { echo "  $2 is '$v', not '$3'"; return 1; }; }
# matches FILE EXPR REGEX: str(EXPR) matches the extended regular expression
matches() {
    local v; v=$(jget "$1" "$2" 2>&1) || true
    [[ $v =~ $3 ]] || { echo "  $2 is '$v', which does not match $3"; return 1; }
}
# skip_or_fail REASON: the Node.js client could not be had
skip_or_fail() {
    if [ "${KILN_REQUIRE_CLOUDRUN_CLIENT:-0}" = 1 ]; then
        fail "$1 (KILN_REQUIRE_CLOUDRUN_CLIENT=1)"
    else
        echo "skip - $1"
    fi
}

command -v curl >/dev/null || { echo "FAIL - curl is needed to check the fake over raw HTTP"; exit 1; }

# ---------------------------------------------------------------------------
echo "# part 1: raw HTTP (curl)"
R=$TMP/raw
# Deploys take 10 s here, so that the reads "while deploying" below come
# before the deploy ends even on a loaded machine.
start_fake "$R" --token "$TOKEN" --deploy-seconds 10 --project "$PROJECT" --project other-project
RAW_PID=$FAKE_PID
BASE=http://127.0.0.1:$PORT
LOC=/v2/projects/$PROJECT/locations/$REGION
SVC=$LOC/services
check "port file holds a port number" grep -qxE '[0-9]+' "$R/port"
# api METHOD PATH [BODY]: body (a JSON string) sent as application/json; the
# response to $TMP/r.json, its headers to $TMP/r.h; prints the status
api() {
    local m=$1 p=$2; shift 2
    local a=(-s -o "$TMP/r.json" -D "$TMP/r.h" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $TOKEN")
    [ $# -lt 1 ] || a+=(-H "Content-Type: application/json" --data-binary "$1")
    curl "${a[@]}" "$BASE$p"
}
# body IMAGE [PORT]: a Service with one container
body() {
    local ports=""
    [ -z "${2:-}" ] || ports=", \"ports\": [{\"containerPort\": $2}]"
    printf '{"labels": {"app": "web"}, "template": {"containers": [{"image": "%s", "env": [{"name": "GREETING", "value": "hello"}]%s}]}}' \
        "$1" "$ports"
}
IMG=us-docker.pkg.dev/$PROJECT/apps/web

code=$(curl -s -o "$TMP/r.json" -D "$TMP/r.h" -w '%{http_code}' "$BASE$SVC/web")
check "no token: 401" test "$code" = 401
check "no token: Google's UNAUTHENTICATED body" is "$TMP/r.json" 'json.dumps(j, sort_keys=True)' \
    '{"error": {"code": 401, "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", "status": "UNAUTHENTICATED"}}'
check "no token: WWW-Authenticate: Bearer" grep -qi '^www-authenticate: Bearer realm=' "$TMP/r.h"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "$BASE$SVC")
check "wrong token: 401" test "$code" = 401

check "GET a missing service: 404" test "$(api GET "$SVC/web")" = 404
check "404: the real NOT_FOUND body" is "$TMP/r.json" 'json.dumps(j, sort_keys=True)' \
    "{\"error\": {\"code\": 404, \"message\": \"Resource 'web' of kind 'SERVICE' in region '$REGION' in project '$PROJECT' does not exist.\", \"status\": \"NOT_FOUND\"}}"
check "404: Content-Type application/json" grep -qi '^content-type: application/json' "$TMP/r.h"
check "GET in a project that does not exist: 403" test "$(api GET "/v2/projects/nope/locations/$REGION/services/web")" = 403
check "403: PERMISSION_DENIED wording" is "$TMP/r.json" '(j["error"]["status"], j["error"]["message"])' \
    "('PERMISSION_DENIED', \"Permission 'run.services.get' denied on resource 'projects/nope/locations/$REGION/services/web' (or resource may not exist).\")"
api GET "$SVC" >/dev/null
check "list with no services: {} (empty fields omitted)" is "$TMP/r.json" 'j' '{}'
check "an unknown path: 404" test "$(api GET /v2/projects/$PROJECT/locations/$REGION/jobs)" = 404

# Validation: each is a 400 INVALID_ARGUMENT with a BadRequest detail.
check "serviceId with upper case and _: 400" test "$(api POST "$SVC?serviceId=Bad_Name" "$(body $IMG:1)")" = 400
check "400: the real service_id violation" is "$TMP/r.json" '(j["error"]["status"], j["error"]["message"])' \
    "('INVALID_ARGUMENT', 'Violation in CreateServiceRequest.service_id: only lowercase, digits, and hyphens; must begin with letter, and cannot end with hyphen; must be less than 50 characters.')"
check "400: a google.rpc.BadRequest field violation" is "$TMP/r.json" \
    '[(d["@type"], d["fieldViolations"][0]["field"]) for d in j["error"]["details"]]' \
    "[('type.googleapis.com/google.rpc.BadRequest', 'Violation in CreateServiceRequest.service_id')]"
long=s$(printf 'x%.0s' $(seq 49))
check "serviceId of 50 characters: 400" test "$(api POST "$SVC?serviceId=$long" "$(body $IMG:1)")" = 400
check "serviceId ending in '-': 400" test "$(api POST "$SVC?serviceId=web-" "$(body $IMG:1)")" = 400
check "no serviceId: 400" test "$(api POST "$SVC" "$(body $IMG:1)")" = 400
check "no template: 400" test "$(api POST "$SVC?serviceId=web" '{"labels": {"a": "b"}}')" = 400
check "400: service.template should be set" is "$TMP/r.json" 'j["error"]["message"]' \
    'Violation in CreateServiceRequest.service.template: should be set.'
check "no containers: 400" test "$(api POST "$SVC?serviceId=web" '{"template": {"containers": []}}')" = 400
check "400: names template.containers" is "$TMP/r.json" 'j["error"]["message"].split(":")[0]' \
    'Violation in CreateServiceRequest.service.template.containers'
check "a container without an image: 400" test "$(api POST "$SVC?serviceId=web" '{"template": {"containers": [{"name": "x"}]}}')" = 400
check "400: the real image message" is "$TMP/r.json" 'j["error"]["message"]' \
    'Violation in CreateServiceRequest.service.template.containers[0].image: must be a container image path in the form [hostname/]repo-path[:tag and/or @digest]'
check "an image with upper case: 400" test "$(api POST "$SVC?serviceId=web" "$(body us-docker.pkg.dev/p/Apps/Web:1)")" = 400
check "env PORT: 400" test "$(api POST "$SVC?serviceId=web" \
    '{"template": {"containers": [{"image": "nginx", "env": [{"name": "PORT", "value": "1"}]}]}}')" = 400
check "400: reserved env names" is "$TMP/r.json" 'j["error"]["message"].split(": ", 1)[1]' \
    'The following reserved env names were provided: PORT. These values are automatically set by the system.'
check "an unknown field: 400" test "$(api POST "$SVC?serviceId=web" \
    '{"template": {"containers": [{"image": "nginx", "containerPorts": [8080]}]}}')" = 400
check "400: Google's unknown-field wording" is "$TMP/r.json" 'j["error"]["message"]' \
    "Invalid JSON payload received. Unknown name \"containerPorts\" at 'service.template.containers[0]': Cannot find field."
check "bad JSON: 400" test "$(api POST "$SVC?serviceId=web" '{"template": ')" = 400
check "traffic not adding up to 100: 400" test "$(api POST "$SVC?serviceId=web" \
    '{"template": {"containers": [{"image": "nginx"}]}, "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 50}]}')" = 400
check "validateOnly=true: 200" test "$(api POST "$SVC?serviceId=web&validateOnly=true" "$(body $IMG:1)")" = 200
check "validateOnly: a done Operation with the defaults filled in" is "$TMP/r.json" \
    '(j["done"], j["response"]["template"]["containers"][0]["resources"]["limits"])' "(True, {'cpu': '1000m', 'memory': '512Mi'})"
check "validateOnly: nothing was created" test "$(api GET "$SVC/web")" = 404

# Create: an Operation that is not done, the service reconciling.
# What the operation and the service look like during the deploy is read at
# once, before any check runs (each check starts a Python).
T0=$(date +%s%N)
code=$(api POST "$SVC?serviceId=web" "$(body $IMG:1)")
cp "$TMP/r.json" "$TMP/create.json"
OP=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("name", ""))' "$TMP/create.json")
api GET "/v2/$OP" >/dev/null; cp "$TMP/r.json" "$TMP/op-early.json"
api GET "$SVC/web" >/dev/null; cp "$TMP/r.json" "$TMP/web-early.json"
check "create: 200" test "$code" = 200
check "create: Operation name projects/P/locations/L/operations/UUID" matches "$TMP/create.json" 'j["name"]' \
    "^projects/$PROJECT/locations/$REGION/operations/[0-9a-f-]{36}\$"
check "create: not done (\"done\" omitted while false)" is "$TMP/create.json" '"done" in j' False
check "create: metadata is the Service, with @type" is "$TMP/create.json" '(j["metadata"]["@type"], j["metadata"]["name"])' \
    "('type.googleapis.com/google.cloud.run.v2.Service', 'projects/$PROJECT/locations/$REGION/services/web')"
check "create: generation \"1\" (int64 as a string), uid, creator" is "$TMP/create.json" \
    '(j["metadata"]["generation"], len(j["metadata"]["uid"]), "@" in j["metadata"]["creator"])' "('1', 36, True)"
check "create: reconciling, Ready CONDITION_RECONCILING, no observedGeneration" is "$TMP/create.json" \
    '(j["metadata"]["reconciling"], j["metadata"]["terminalCondition"]["type"], j["metadata"]["terminalCondition"]["state"], "observedGeneration" in j["metadata"])' \
    "(True, 'Ready', 'CONDITION_RECONCILING', False)"
check "create: latestCreatedRevision web-00001-xxx, no latestReadyRevision" is "$TMP/create.json" \
    'bool(__import__("re").fullmatch(r"projects/'$PROJECT'/locations/'$REGION'/revisions/web-00001-[a-z0-9]{3}", j["metadata"]["latestCreatedRevision"])) and "latestReadyRevision" not in j["metadata"]' True
REV1=$(jget "$TMP/create.json" 'j["metadata"]["latestCreatedRevision"]' || true)
check "create again: 409" test "$(api POST "$SVC?serviceId=web" "$(body $IMG:1)")" = 409
check "409: the real ALREADY_EXISTS body" is "$TMP/r.json" 'json.dumps(j, sort_keys=True)' \
    "{\"error\": {\"code\": 409, \"message\": \"Resource 'web' already exists.\", \"status\": \"ALREADY_EXISTS\"}}"
check "GET the operation at once: not done yet" is "$TMP/op-early.json" '("done" in j, j["name"])' "(False, '$OP')"
check "GET the service while deploying: reconciling, no uri" is "$TMP/web-early.json" '(j.get("reconciling"), "uri" in j)' "(True, False)"
# Waits up to 60 s, a limit that only catches a fake that never finishes;
# how soon it is done is not checked (a loaded machine is slow), only that it
# was not done before --deploy-seconds and is done afterwards (done.json).
wait_for 60 sh -c "curl -s -H 'Authorization: Bearer $TOKEN' '$BASE/v2/$OP' | grep -q '\"done\": true'" || true
T1=$(date +%s%N)
took=$(( (T1 - T0) / 1000000 ))
check "the operation is not done before --deploy-seconds (${took} ms, 10000 asked)" test "$took" -ge 10000
api GET "/v2/$OP" >/dev/null
cp "$TMP/r.json" "$TMP/done.json"
check "done: response is the Service, with @type, no error" is "$TMP/done.json" \
    '(j["done"], j["response"]["@type"], "error" in j)' "(True, 'type.googleapis.com/google.cloud.run.v2.Service', False)"
check "done: Ready CONDITION_SUCCEEDED, not reconciling (false omitted)" is "$TMP/done.json" \
    '(j["response"]["terminalCondition"]["state"], "reconciling" in j["response"])' "('CONDITION_SUCCEEDED', False)"
check "done: observedGeneration \"1\", latestReadyRevision = latestCreatedRevision" is "$TMP/done.json" \
    '(j["response"]["observedGeneration"], j["response"]["latestReadyRevision"] == j["response"]["latestCreatedRevision"] == "'$REV1'")' "('1', True)"
check "done: uri https://web-HASH-uc.a.run.app" matches "$TMP/done.json" 'j["response"]["uri"]' '^https://web-[a-z0-9]{10}-uc\.a\.run\.app$'
check "done: conditions RoutesReady, ConfigurationsReady succeeded" is "$TMP/done.json" \
    '[(c["type"], c["state"]) for c in j["response"]["conditions"]]' \
    "[('RoutesReady', 'CONDITION_SUCCEEDED'), ('ConfigurationsReady', 'CONDITION_SUCCEEDED')]"
check "done: trafficStatuses LATEST 100" is "$TMP/done.json" '[(t["type"], t["percent"]) for t in j["response"]["trafficStatuses"]]' \
    "[('TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', 100)]"
api GET "$SVC/web" >/dev/null
cp "$TMP/r.json" "$TMP/web.json"
check "GET: server defaults: ingress, launchStage, traffic" is "$TMP/web.json" '(j["ingress"], j["launchStage"], j["traffic"])' \
    "('INGRESS_TRAFFIC_ALL', 'GA', [{'type': 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST', 'percent': 100}])"
check "GET: container defaults: port http1 8080, limits, cpuIdle" is "$TMP/web.json" \
    '(j["template"]["containers"][0]["ports"], j["template"]["containers"][0]["resources"])' \
    "([{'name': 'http1', 'containerPort': 8080}], {'limits': {'cpu': '1000m', 'memory': '512Mi'}, 'cpuIdle': True, 'startupCpuBoost': True})"
check "GET: template defaults: scaling, timeout, concurrency, compute service account" is "$TMP/web.json" \
    '(j["template"]["scaling"], j["template"]["timeout"], j["template"]["maxInstanceRequestConcurrency"], j["template"]["serviceAccount"].endswith("-compute@developer.gserviceaccount.com"))' \
    "({'maxInstanceCount': 100}, '300s', 80, True)"
check "GET: what was sent is kept (labels, env)" is "$TMP/web.json" '(j["labels"], j["template"]["containers"][0]["env"])' \
    "({'app': 'web'}, [{'name': 'GREETING', 'value': 'hello'}])"
check "GET: a quoted etag" matches "$TMP/web.json" 'j["etag"]' '^"[A-Za-z0-9_-]+/[A-Za-z0-9_-]+"$'
api GET "$SVC/web?%24alt=json%3Benum-encoding%3Dint" >/dev/null
check "\$alt=json;enum-encoding=int: enums as numbers" is "$TMP/r.json" \
    '(j["ingress"], j["launchStage"], j["terminalCondition"]["state"], j["traffic"][0]["type"])' "(1, 4, 4, 1)"
ETAG1=$(jget "$TMP/web.json" 'j["etag"]' || true)

# Updates
check "PATCH the same service: 200" test "$(api PATCH "$SVC/web" "$(cat "$TMP/web.json")")" = 200
check "an update that changes nothing: done at once, generation still 1" is "$TMP/r.json" \
    '(j.get("done"), j["response"]["generation"])' "(True, '1')"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); s["template"]["containers"][0]["image"]=sys.argv[2]; print(json.dumps(s))' \
    "$TMP/web.json" "$IMG:2" >"$TMP/web2.json"
check "PATCH a new image with the current etag: 200" test "$(api PATCH "$SVC/web" "$(cat "$TMP/web2.json")")" = 200
cp "$TMP/r.json" "$TMP/patch.json"
check "update: not done, generation 2, a new revision web-00002-xxx, still serving 00001" is "$TMP/patch.json" \
    '("done" in j, j["metadata"]["generation"], j["metadata"]["latestCreatedRevision"].split("/")[-1][:10], j["metadata"]["latestReadyRevision"] == "'$REV1'", j["metadata"]["observedGeneration"])' \
    "(False, '2', 'web-00002-', True, '1')"
OP2=$(jget "$TMP/patch.json" 'j["name"]' || true)
check "PATCH with the old etag: 409" test "$(api PATCH "$SVC/web" "$(cat "$TMP/web2.json")")" = 409
check "409: ABORTED" is "$TMP/r.json" '(j["error"]["code"], j["error"]["status"])' "(409, 'ABORTED')"
check "POST operations/ID:wait: 200" test "$(api POST "/v2/$OP2:wait" '{"timeout": "60s"}')" = 200
check ":wait returns the done operation: generation 2 ready on web-00002" is "$TMP/r.json" \
    '(j["done"], j["response"]["observedGeneration"], j["response"]["latestReadyRevision"].split("/")[-1][:10])' "(True, '2', 'web-00002-')"
check "PATCH updateMask=labels: 200" test "$(api PATCH "$SVC/web?updateMask=labels" '{"labels": {"team": "kiln"}}')" = 200
check "updateMask=labels: labels replaced, image kept, no new revision, generation 3" is "$TMP/r.json" \
    '(j["metadata"]["labels"], j["metadata"]["template"]["containers"][0]["image"], j["metadata"]["latestCreatedRevision"].split("/")[-1][:10], j["metadata"]["generation"])' \
    "({'team': 'kiln'}, '$IMG:2', 'web-00002-', '3')"
api POST "/v2/$(jget "$TMP/r.json" 'j["name"]'):wait" '{}' >/dev/null
check "PATCH a missing service: 404" test "$(api PATCH "$SVC/api" "$(body $IMG-api:1)")" = 404
check "PATCH a missing service with allowMissing=true: creates it" test "$(api PATCH "$SVC/api?allowMissing=true" "$(body $IMG-api:1 9000)")" = 200
check "allowMissing: generation 1, revision api-00001, port 9000" is "$TMP/r.json" \
    '(j["metadata"]["generation"], j["metadata"]["latestCreatedRevision"].split("/")[-1][:10], j["metadata"]["template"]["containers"][0]["ports"])' \
    "('1', 'api-00001-', [{'name': 'http1', 'containerPort': 9000}])"

# A deploy that fails: code 9 and the real message, the last revision serves on.
check "PATCH a fail-deploy image on port 9000: 200" test "$(api PATCH "$SVC/web" "$(body $IMG/fail-deploy:3 9000)")" = 200
OP3=$(jget "$TMP/r.json" 'j["name"]' || true)
REV3=$(jget "$TMP/r.json" 'j["metadata"]["latestCreatedRevision"].split("/")[-1]' || true)
api POST "/v2/$OP3:wait" '{"timeout": "60s"}' >/dev/null
cp "$TMP/r.json" "$TMP/failed.json"
check "failed deploy: done, error code 9, no response" is "$TMP/failed.json" '(j["done"], j["error"]["code"], "response" in j)' "(True, 9, False)"
FAILMSG="Revision '$REV3' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=9000 environment variable within the allocated timeout. This can happen when the container port is misconfigured or if the timeout is too short. The health check timeout can be extended. Logs for this revision might contain more information."
check "failed deploy: the real message, naming $REV3 and PORT=9000" is "$TMP/failed.json" 'j["error"]["message"]' "$FAILMSG"
api GET "$SVC/web" >/dev/null
check "failed deploy: Ready CONDITION_FAILED with the message, not reconciling" is "$TMP/r.json" \
    '(j["terminalCondition"]["state"], j["terminalCondition"]["message"] == """'"$FAILMSG"'""", "reconciling" in j)' "('CONDITION_FAILED', True, False)"
check "failed deploy: generation 4, observedGeneration and latestReadyRevision of the last good deploy" is "$TMP/r.json" \
    '(j["generation"], j["observedGeneration"], j["latestReadyRevision"].split("/")[-1][:10], j["latestCreatedRevision"].split("/")[-1])' \
    "('4', '3', 'web-00002-', '$REV3')"
check "a good image after a failure deploys again" test "$(api PATCH "$SVC/web" "$(body $IMG:5)")" = 200
api POST "/v2/$(jget "$TMP/r.json" 'j["name"]'):wait" '{}' >/dev/null
check "recovered: ready on web-00004" is "$TMP/r.json" '(j["response"]["terminalCondition"]["state"], j["response"]["latestReadyRevision"].split("/")[-1][:10])' \
    "('CONDITION_SUCCEEDED', 'web-00004-')"
api GET "$SVC/web" >/dev/null
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); r=s["latestReadyRevision"].split("/")[-1]; s["template"]["revision"]=r; s.pop("etag"); print(json.dumps(s))' "$TMP/r.json" >"$TMP/named.json"
check "template.revision naming the current revision, same template: 200" test "$(api PATCH "$SVC/web" "$(cat "$TMP/named.json")")" = 200
sed "s#$IMG:5#$IMG:7#" "$TMP/named.json" >"$TMP/named2.json"
api POST "/v2/$(jget "$TMP/r.json" 'j["name"]'):wait" '{}' >/dev/null
check "template.revision of an existing revision with another image: 409" test "$(api PATCH "$SVC/web" "$(cat "$TMP/named2.json")")" = 409
check "409: Revision named ... with different configuration already exists." matches "$TMP/r.json" 'j["error"]["message"]' \
    "^Revision named 'web-00004-[a-z0-9]{3}' with different configuration already exists\.\$"

# Lists and operations
api GET "$SVC" >/dev/null
check "list: api and web" is "$TMP/r.json" '[s["name"].split("/")[-1] for s in j["services"]]' "['api', 'web']"
api GET "$SVC?pageSize=1" >/dev/null
check "list pageSize=1: one service and a nextPageToken" is "$TMP/r.json" '(len(j["services"]), bool(j.get("nextPageToken")))' "(1, True)"
api GET "$SVC?pageSize=1&pageToken=$(jget "$TMP/r.json" 'j["nextPageToken"]')" >/dev/null
check "list page 2: web, no nextPageToken" is "$TMP/r.json" '([s["name"].split("/")[-1] for s in j["services"]], "nextPageToken" in j)' "(['web'], False)"
api GET "/v2/projects/$PROJECT/locations/-/services" >/dev/null
check "list in location '-': every location" is "$TMP/r.json" 'len(j["services"])' 2
api GET "$LOC/operations" >/dev/null
check "operations list: all done now" is "$TMP/r.json" 'all(o.get("done") for o in j["operations"]) and len(j["operations"]) >= 6' True
check "GET a missing operation: 404" test "$(api GET "$LOC/operations/00000000-0000-0000-0000-000000000000")" = 404

# IAM
check "getIamPolicy (GET): 200" test "$(api GET "$SVC/web:getIamPolicy")" = 200
check "no bindings: {\"etag\": \"ACAB\"}" is "$TMP/r.json" 'j' "{'etag': 'ACAB'}"
check "setIamPolicy: 200" test "$(api POST "$SVC/web:setIamPolicy" \
    '{"policy": {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}}')" = 200
check "setIamPolicy: version 1, the binding, a new etag" is "$TMP/r.json" '(j["version"], j["bindings"], j["etag"][:2])' \
    "(1, [{'role': 'roles/run.invoker', 'members': ['allUsers']}], 'Bw')"
PETAG=$(jget "$TMP/r.json" 'j["etag"]' || true)
check "getIamPolicy (POST, options): the same policy" test "$(api POST "$SVC/web:getIamPolicy" '{"options": {"requestedPolicyVersion": 3}}')" = 200
check "getIamPolicy: etag $PETAG" is "$TMP/r.json" 'j["etag"]' "$PETAG"
check "setIamPolicy with a stale etag: 409" test "$(api POST "$SVC/web:setIamPolicy" '{"policy": {"etag": "BwAAAAAAAAA=", "bindings": []}}')" = 409
check "409: the real IAM ABORTED body" is "$TMP/r.json" 'json.dumps(j, sort_keys=True)' \
    '{"error": {"code": 409, "message": "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.", "status": "ABORTED"}}'
check "v1 getIamPolicy (gcloud's path) reads the same policy" test "$(api GET "/v1/projects/$PROJECT/locations/$REGION/services/web:getIamPolicy")" = 200
check "v1: etag $PETAG" is "$TMP/r.json" 'j["etag"]' "$PETAG"
check "testIamPermissions: 200" test "$(api POST "$SVC/web:testIamPermissions" '{"permissions": ["run.services.get", "iam.x"]}')" = 200
check "testIamPermissions: the run.* ones" is "$TMP/r.json" 'j' "{'permissions': ['run.services.get']}"
check "getIamPolicy of a missing service: 404" test "$(api GET "$SVC/nope:getIamPolicy")" = 404

# Delete
check "DELETE with a stale etag: 409" test "$(api DELETE "$SVC/api?etag=%22x%22")" = 409
check "DELETE: 200" test "$(api DELETE "$SVC/api")" = 200
check "DELETE: a done Operation whose response is the deleted Service" is "$TMP/r.json" \
    '(j["done"], j["response"]["name"].split("/")[-1], "deleteTime" in j["response"])' "(True, 'api', True)"
check "deleted: GET is 404" test "$(api GET "$SVC/api")" = 404
check "DELETE again: 404" test "$(api DELETE "$SVC/api")" = 404

L=$R/requests.jsonl
check "log: the create POST, its serviceId and JSON body" log_any "$L" \
    'l["method"] == "POST" and l["path"] == "'$SVC'" and l["query"].get("serviceId") == "web" and l["content_type"] == "application/json" and l["authorization"] is True and l["body"]["template"]["containers"][0]["image"] == "'$IMG:1'" and l["status"] == 200'
check "log: the request without a token" log_any "$L" 'l["authorization"] is False and l["status"] == 401'
check "log: the PATCH with updateMask" log_any "$L" 'l["method"] == "PATCH" and l["query"].get("updateMask") == "labels"'
check "log: bad JSON logged as null" log_any "$L" 'l["method"] == "POST" and l["body"] is None and l["status"] == 400'
check "log: every line has the documented keys" python3 -c 'import json,sys
keys={"method","path","query","content_type","authorization","body","status"}
sys.exit(0 if all(keys <= set(json.loads(x)) for x in open(sys.argv[1])) else 1)' "$L"
check "log: the token never appears" lacks_line "$L" "$TOKEN"
check "SIGTERM: the fake exits 0" stop_fake "$RAW_PID"
check "the fake printed nothing (no tracebacks)" test ! -s "$R/server.out"

# ---------------------------------------------------------------------------
echo "# part 2: Google's Node.js client (@google-cloud/run, REST)"
CLIENTS_RUN=0
if ! command -v node >/dev/null; then
    skip_or_fail "@google-cloud/run: no node on PATH"
elif ! CDIR=$(bash "$CLIENT_SH" 2>"$TMP/why-node"); then
    skip_or_fail "@google-cloud/run: $(tr '\n' ' ' <"$TMP/why-node")"
else
    CLIENTS_RUN=$((CLIENTS_RUN + 1))
    N=$TMP/node
    start_fake "$N" --token "$TOKEN" --deploy-seconds 1
    NPID=$FAKE_PID
    rc=0
    node "$CHECK_JS" "$CDIR" "$PORT" "$TOKEN" "$PROJECT" "$REGION" "$N/out.json" >"$N/node.out" 2>&1 || rc=$?
    check "the Node.js client script ran to the end (rc $rc)" test "$rc" = 0
    [ "$rc" = 0 ] || sed 's/^/  /' "$N/node.out"
    O=$N/out.json
    V=$(jget "$O" 'j["client"]["version"]' 2>/dev/null || echo '?')
    C="@google-cloud/run $V"
    echo "# $C on node $(node --version)"
    check "$C: createService + operation.promise(): the ready Service" is "$O" \
        '(j["create"]["result"]["name"], j["create"]["result"]["generation"], j["create"]["result"]["terminalState"], j["create"]["result"]["reconciling"])' \
        "('projects/$PROJECT/locations/$REGION/services/web', '1', 4, False)"
    check "$C: the operation was not done when returned; its metadata decoded as a reconciling Service" is "$O" \
        '(j["create"]["doneAtStart"], j["create"]["metadata"]["reconciling"], j["create"]["metadata"]["terminalState"], j["create"]["metadata"]["generation"])' \
        "(False, True, 2, '1')"
    check "$C: operation.promise() waited for --deploy-seconds" python3 -c 'import json,sys; ms=json.load(open(sys.argv[1]))["create"]["ms"]; sys.exit(0 if ms >= 1000 else 1)' "$O"
    check "$C: uri, latestReadyRevision web-00001, env and labels as sent" is "$O" \
        '(bool(__import__("re").fullmatch(r"https://web-[a-z0-9]{10}-uc\.a\.run\.app", j["create"]["result"]["uri"])), j["create"]["result"]["latestReadyRevision"].split("/")[-1][:10], j["create"]["result"]["env"], j["create"]["result"]["labels"])' \
        "(True, 'web-00001-', ['GREETING=hello'], {'app': 'web'})"
    check "$C: createService of an existing service: 409, ALREADY_EXISTS 'Resource 'web' already exists.'" is "$O" \
        '(j["createAgain"]["error"]["code"], j["createAgain"]["error"]["body"]["error"]["status"], j["createAgain"]["error"]["body"]["error"]["message"])' \
        "(409, 'ALREADY_EXISTS', \"Resource 'web' already exists.\")"
    check "$C: getService: enums as names, int64 as strings, defaults" is "$O" \
        '(j["get"]["generation"], j["get"]["ingress"], j["get"]["launchStage"], j["get"]["terminalState"], j["get"]["traffic"], j["get"]["containerPort"], j["get"]["limits"])' \
        "('1', 'INGRESS_TRAFFIC_ALL', 'GA', 'CONDITION_SUCCEEDED', ['TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST:100'], 8080, {'cpu': '1000m', 'memory': '512Mi'})"
    check "$C: getService of a missing service: 404, the real NOT_FOUND message" is "$O" \
        '(j["getMissing"]["error"]["code"], j["getMissing"]["error"]["body"]["error"]["status"], j["getMissing"]["error"]["body"]["error"]["message"])' \
        "(404, 'NOT_FOUND', \"Resource 'nope' of kind 'SERVICE' in region '$REGION' in project '$PROJECT' does not exist.\")"
    check "$C: updateService (the Service as read, new image): generation 2 on web-00002" is "$O" \
        '(j["update"]["doneAtStart"], j["update"]["pollDone"], j["update"]["result"]["generation"], j["update"]["result"]["observedGeneration"], j["update"]["result"]["image"], j["update"]["result"]["latestReadyRevision"].split("/")[-1][:10])' \
        "(False, False, '2', '2', 'us-docker.pkg.dev/kiln-test/apps/web:2', 'web-00002-')"
    check "$C: updateService with a stale etag: 409 ABORTED" is "$O" \
        '(j["updateStaleEtag"]["error"]["code"], j["updateStaleEtag"]["error"]["body"]["error"]["status"])' "(409, 'ABORTED')"
    check "$C: a failing deploy rejects operation.promise() with a GoogleError, gRPC code 9" is "$O" \
        '(j["failingDeploy"]["error"]["name"], j["failingDeploy"]["error"]["code"])' "('GoogleError', 9)"
    check "$C: ... whose message is the real one" matches "$O" 'j["failingDeploy"]["error"]["message"]' \
        "^Revision 'web-00003-[a-z0-9]{3}' is not ready and cannot serve traffic\. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable within the allocated timeout\. "
    check "$C: after the failure: CONDITION_FAILED, serving web-00002, observedGeneration 2 of 3" is "$O" \
        '(j["afterFailure"]["terminalState"], j["afterFailure"]["latestReadyRevision"].split("/")[-1][:10], j["afterFailure"]["observedGeneration"], j["afterFailure"]["generation"], j["afterFailure"]["terminalMessage"] == j["failingDeploy"]["error"]["message"])' \
        "('CONDITION_FAILED', 'web-00002-', '2', '3', True)"
    check "$C: updateService allowMissing creates 'api' on port 9000" is "$O" \
        '(j["upsert"]["result"]["name"].split("/")[-1], j["upsert"]["result"]["containerPort"], j["upsert"]["result"]["terminalState"])' "('api', 9000, 4)"
    check "$C: listServices: api, web" is "$O" '[n.split("/")[-1] for n in j["list"]["names"]]' "['api', 'web']"
    check "$C: createService 'Bad_Name': 400 INVALID_ARGUMENT, the real service_id message" is "$O" \
        '(j["badServiceId"]["error"]["code"], j["badServiceId"]["error"]["body"]["error"]["status"], j["badServiceId"]["error"]["body"]["error"]["message"].split(":")[0])' \
        "(400, 'INVALID_ARGUMENT', 'Violation in CreateServiceRequest.service_id')"
    check "$C: createService without an image: 400, names containers[0].image" is "$O" \
        '(j["noImage"]["error"]["code"], j["noImage"]["error"]["body"]["error"]["message"].split(":")[0])' \
        "(400, 'Violation in CreateServiceRequest.service.template.containers[0].image')"
    check "$C: getIamPolicy of a new service: no bindings, etag ACAB" is "$O" \
        '(j["getIamPolicy"]["bindings"], j["getIamPolicy"]["etag"])' "([], 'ACAB')"
    check "$C: setIamPolicy: version 1, roles/run.invoker for allUsers" is "$O" \
        '(j["setIamPolicy"]["version"], j["setIamPolicy"]["bindings"])' "(1, [{'role': 'roles/run.invoker', 'members': ['allUsers']}])"
    check "$C: setIamPolicy with a stale etag: 409 ABORTED, concurrent policy changes" is "$O" \
        '(j["setIamPolicyStale"]["error"]["code"], j["setIamPolicyStale"]["error"]["body"]["error"]["status"], j["setIamPolicyStale"]["error"]["body"]["error"]["message"][:36])' \
        "(409, 'ABORTED', 'There were concurrent policy changes')"
    check "$C: setIamPolicy with the etag it read (bytes, base64): accepted" is "$O" \
        'j["setIamPolicyWithEtag"]["bindings"]' "[{'role': 'roles/run.invoker', 'members': ['allUsers', 'user:dev@example.com']}]"
    check "$C: testIamPermissions" is "$O" 'j["testIamPermissions"]["permissions"]' "['run.services.get', 'run.routes.invoke']"
    check "$C: deleteService + operation.promise(): the deleted Service; then getService 404" is "$O" \
        '(j["delete"]["result"]["name"].split("/")[-1], j["getDeleted"]["error"]["code"])' "('api', 404)"
    check "$C: a wrong token: 401 UNAUTHENTICATED, the real message" is "$O" \
        '(j["wrongToken"]["error"]["code"], j["wrongToken"]["error"]["body"]["error"]["status"], j["wrongToken"]["error"]["body"]["error"]["message"])' \
        "(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.')"
    L=$N/requests.jsonl
    check "$C: it sent JSON with \$alt=json;enum-encoding=int" log_any "$L" \
        'l["method"] == "POST" and l["query"].get("$alt") == "json;enum-encoding=int" and l["content_type"] == "application/json" and l["query"].get("serviceId") == "web"'
    check "$C: it sent enums as numbers (ingress/traffic in the PATCH body)" log_any "$L" \
        'l["method"] == "PATCH" and l["body"] and l["body"].get("ingress") == 1'
    check "$C: operation.promise() polled GET .../operations/ID" log_any "$L" \
        'l["method"] == "GET" and "/operations/" in l["path"] and l["status"] == 200'
    check "$C: getIamPolicy is a GET ...:getIamPolicy" log_any "$L" 'l["method"] == "GET" and l["path"].endswith("/services/web:getIamPolicy")'
    check "$C: the requests came from google-api-nodejs-client" log_any "$L" '(l["user_agent"] or "").startswith("google-api-nodejs-client/")'
    check "$C: the token never appears in the log" lacks_line "$L" "$TOKEN"
    check "$C: SIGTERM: the fake exits 0" stop_fake "$NPID"
    check "$C: the fake printed nothing (no tracebacks)" test ! -s "$N/server.out"
fi

# ---------------------------------------------------------------------------
echo "# part 3: gcloud"
if ! command -v gcloud >/dev/null; then
    echo "skip - gcloud: not installed (the Google Cloud SDK is neither a Debian nor an npm package)"
else
    CLIENTS_RUN=$((CLIENTS_RUN + 1))
    G=$TMP/gcloud
    start_fake "$G" --token "$TOKEN" --deploy-seconds 0.2
    GPID=$FAKE_PID
    # A private configuration: no login, no prompts, no update checks or
    # usage reports; the run API pointed at the fake; a static access token.
    export CLOUDSDK_CONFIG=$G/config CLOUDSDK_CORE_DISABLE_PROMPTS=1 \
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=1 CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=1 \
        CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN=http://127.0.0.1:$PORT/
    printf '%s\n' "$TOKEN" >"$G/token"
    printf 'not-%s\n' "$TOKEN" >"$G/badtoken"
    GV=$(gcloud version 2>/dev/null | sed -n 's/^Google Cloud SDK //p' || true)
    C="gcloud $GV"
    gc() { gcloud "$@" --project "$PROJECT" --region "$REGION" --access-token-file "$G/token" --quiet; }
    # gout NAME ARGS...: stdout to $G/NAME.out, stderr to $G/NAME.err, prints the exit code
    gout() { local n=$1 rc=0; shift; gc "$@" >"$G/$n.out" 2>"$G/$n.err" || rc=$?; echo "$rc"; }
    curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -X POST --data-binary "$(body $IMG:1)" \
        "http://127.0.0.1:$PORT$SVC?serviceId=web"
    rc=$(gout get run services get-iam-policy web)
    check "$C: run services get-iam-policy exits 0" test "$rc" = 0
    check "$C: prints 'etag: ACAB' for a service without bindings" sh -c "[ \"\$(cat '$G/get.out')\" = 'etag: ACAB' ]"
    rc=$(gout add run services add-iam-policy-binding web --member=allUsers --role=roles/run.invoker)
    check "$C: add-iam-policy-binding exits 0" test "$rc" = 0
    check "$C: 'Updated IAM policy for service [web].'" grep -qxF 'Updated IAM policy for service [web].' "$G/add.err"
    check "$C: prints the policy: allUsers as roles/run.invoker, an etag, version 1" sh -c \
        "[ \"\$(sed 's/^etag: Bw.*/etag: E/' '$G/add.out' | tr '\n' '|')\" = 'bindings:|- members:|  - allUsers|  role: roles/run.invoker|etag: E|version: 1|' ]"
    rc=$(gout json run services get-iam-policy web --format=json)
    check "$C: get-iam-policy --format=json: the binding" is "$G/json.out" '(j["bindings"], j["version"])' \
        "([{'members': ['allUsers'], 'role': 'roles/run.invoker'}], 1)"
    python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p["bindings"][0]["members"].append("user:dev@example.com"); json.dump(p, open(sys.argv[2], "w"))' \
        "$G/json.out" "$G/policy.json" || true
    rc=$(gout rm run services remove-iam-policy-binding web --member=allUsers --role=roles/run.invoker)
    check "$C: remove-iam-policy-binding exits 0 (it sends back the etag it read)" test "$rc" = 0
    check "$C: no bindings left" sh -c "! grep -q '^bindings:' '$G/rm.out' && grep -qx 'version: 1' '$G/rm.out'"
    rc=$(gout stale run services set-iam-policy web "$G/policy.json")
    check "$C: set-iam-policy with the etag from before the removal fails" test "$rc" = 1
    check "$C: 'ERROR: (gcloud.run.services.set-iam-policy) ABORTED: There were concurrent policy changes. ...'" \
        grep -qxF 'ERROR: (gcloud.run.services.set-iam-policy) ABORTED: There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.' "$G/stale.err"
    python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p.pop("etag"); json.dump(p, open(sys.argv[1], "w"))' "$G/policy.json" || true
    rc=$(gout set run services set-iam-policy web "$G/policy.json")
    check "$C: set-iam-policy without an etag replaces the policy" sh -c \
        "[ $rc = 0 ] && grep -qxF '  - user:dev@example.com' '$G/set.out' && grep -qxF 'Updated IAM policy for service [web].' '$G/set.err'"
    rc=$(gout nope run services get-iam-policy nope)
    check "$C: a missing service fails" test "$rc" = 1
    check "$C: 'ERROR: (gcloud.run.services.get-iam-policy) NOT_FOUND: Resource 'nope' of kind 'SERVICE' in region '$REGION' in project '$PROJECT' does not exist.'" \
        grep -qF "ERROR: (gcloud.run.services.get-iam-policy) NOT_FOUND: Resource 'nope' of kind 'SERVICE' in region '$REGION' in project '$PROJECT' does not exist." "$G/nope.err"
    rc=0; gcloud run services get-iam-policy web --project "$PROJECT" --region "$REGION" \
        --access-token-file "$G/badtoken" --quiet >"$G/bad.out" 2>"$G/bad.err" || rc=$?
    check "$C: a wrong token fails" test "$rc" = 1
    check "$C: 'ERROR: (gcloud.run.services.get-iam-policy) UNAUTHENTICATED: Request had invalid authentication credentials. ...'" \
        grep -qF 'ERROR: (gcloud.run.services.get-iam-policy) UNAUTHENTICATED: Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.' "$G/bad.err"
    L=$G/requests.jsonl
    check "$C: it used the v1 IAM path with options.requestedPolicyVersion=3" log_any "$L" \
        'l["method"] == "GET" and l["path"] == "/v1/projects/'$PROJECT'/locations/'$REGION'/services/web:getIamPolicy" and l["query"].get("options.requestedPolicyVersion") == "3"'
    check "$C: it POSTed setIamPolicy with a policy" log_any "$L" \
        'l["method"] == "POST" and l["path"].endswith("/services/web:setIamPolicy") and "policy" in (l["body"] or {}) and l["status"] == 200'
    check "$C: the requests came from gcloud" log_any "$L" '"gcloud/" in (l["user_agent"] or "")'
    check "$C: the token never appears in the log" lacks_line "$L" "$TOKEN"
    check "$C: SIGTERM: the fake exits 0" stop_fake "$GPID"

    # The Cloud Run v2 client that the SDK bundles (generated GAPIC Python,
    # REST transport, google-api-core operations), run with gcloud's Python.
    GPY=$(gcloud info --format='value(basic.python_location)' 2>/dev/null || true)
    GROOT=$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null || true)
    if [ -z "$GPY" ] || [ ! -d "$GROOT/lib/googlecloudsdk/generated_clients/gapic_clients/run_v2" ]; then
        echo "skip - gcloud's bundled Cloud Run v2 client: not in this SDK ($GROOT)"
    else
        C="gcloud $GV bundled run_v2 client"
        start_fake "$G/gapic" --token "$TOKEN" --deploy-seconds 1
        GAPID=$FAKE_PID
        rc=0
        "$GPY" "$KILN_SOURCE_DIR/tests/fakes/cloudrun_gapic_check.py" "$GROOT" "$PORT" "$TOKEN" "$PROJECT" "$REGION" \
            "$G/gapic/out.json" >"$G/gapic/py.out" 2>&1 || rc=$?
        check "$C: the script ran to the end (rc $rc)" test "$rc" = 0
        [ "$rc" = 0 ] || sed 's/^/  /' "$G/gapic/py.out"
        O=$G/gapic/out.json
        check "$C: create_service + operation.result(): ready, generation 1" is "$O" \
            '(j["create"]["doneAtStart"], j["create"]["result"]["generation"], j["create"]["result"]["terminalState"], j["create"]["result"]["latestReadyRevision"].split("/")[-1][:12])' \
            "(False, 1, 'CONDITION_SUCCEEDED', 'gapic-00001-')"
        check "$C: create again: Conflict 409, 'Resource 'gapic' already exists.'" is "$O" \
            '(j["createAgain"]["error"]["type"], j["createAgain"]["error"]["message"].split(": ", 1)[1])' \
            "('Conflict', \"Resource 'gapic' already exists.\")"
        check "$C: get_service of a missing service: NotFound, the real message" is "$O" \
            '(j["getMissing"]["error"]["type"], j["getMissing"]["error"]["grpc"], j["getMissing"]["error"]["message"].split(": ", 1)[1])' \
            "('NotFound', 'NOT_FOUND', \"Resource 'nope' of kind 'SERVICE' in region '$REGION' in project '$PROJECT' does not exist.\")"
        check "$C: update_service: generation 2 ready" is "$O" \
            '(j["update"]["result"]["generation"], j["update"]["result"]["observedGeneration"], j["update"]["result"]["image"].endswith(":2"))' "(2, 2, True)"
        check "$C: a stale etag: Conflict 409" is "$O" '(j["updateStaleEtag"]["error"]["type"], j["updateStaleEtag"]["error"]["code"])' "('Conflict', 409)"
        check "$C: a failing deploy: operation.result() raises FailedPrecondition with the real message" matches "$O" \
            'j["failingDeploy"]["error"]["type"] + " " + j["failingDeploy"]["error"]["grpc"] + " " + j["failingDeploy"]["error"]["message"]' \
            "^FailedPrecondition FAILED_PRECONDITION Revision 'gapic-00003-[a-z0-9]{3}' is not ready and cannot serve traffic\\. The user-provided container failed to start"
        check "$C: after the failure: CONDITION_FAILED, observedGeneration 2 of 3, serving gapic-00002" is "$O" \
            '(j["afterFailure"]["terminalState"], j["afterFailure"]["observedGeneration"], j["afterFailure"]["generation"], j["afterFailure"]["latestReadyRevision"].split("/")[-1][:12])' \
            "('CONDITION_FAILED', 2, 3, 'gapic-00002-')"
        check "$C: list_services, get_iam_policy (ACAB), set_iam_policy (version 1)" is "$O" \
            '(len(j["list"]["names"]), j["getIamPolicy"]["etag"], j["setIamPolicy"]["version"], j["setIamPolicy"]["bindings"])' \
            "(1, 'ACAB', 1, [['roles/run.invoker', ['allUsers']]])"
        check "$C: delete_service + operation.result(): the deleted Service" is "$O" 'j["delete"]["result"]["name"].split("/")[-1]' gapic
        check "$C: a wrong token: the 401 makes google-auth try to refresh a token it cannot refresh" is "$O" \
            'j["wrongToken"]["exception"].split(":")[0]' RefreshError
        check "$C: ... after the server answered 401" log_any "$G/gapic/requests.jsonl" 'l["authorization"] is True and l["status"] == 401'
        check "$C: it POSTed the JSON Service with serviceId, from python-requests" log_any "$G/gapic/requests.jsonl" \
            'l["method"] == "POST" and (l["user_agent"] or "").startswith("python-requests/") and l["query"].get("serviceId") == "gapic" and l["body"]["labels"] == {"app": "gapic"}'
        check "$C: SIGTERM: the fake exits 0" stop_fake "$GAPID"
    fi
    unset CLOUDSDK_CONFIG CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN
    echo "skip - gcloud run deploy/describe/list/update: they use the Knative serving v1 API" \
        "(/apis/serving.knative.dev/v1/namespaces/P/services/S) on a regional host (REGION-run.googleapis.com," \
        "derived from the endpoint override), not the v2 API the fake serves"
fi

if [ "$CLIENTS_RUN" = 0 ]; then
    echo "# no real Google client could be had: the fake was checked with curl only"
fi
check "no fake server is left running" sh -c "! ps -eo args= | grep -F '$FAKE' | grep -v grep | grep -qF -- '$TMP'"
finish
