#!/usr/bin/env bash
# cloudrun-deploy against tests/fakes/fake_cloudrun.py (Cloud Run cannot be
# reached from here; test_fake_cloudrun.sh checks the fake with a real Google
# client): the seed's staging deploy, an update that keeps what is deployed,
# a revision that fails, a wait that runs out, a bad token, no server, no
# token for Google's endpoint, Cloud Build's gcloud form, a dry run.
source "$(dirname "$0")/lib.sh"

FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_cloudrun.py
TOKEN=tok-$MARK
start_fake "$TMP/fake" --token "$TOKEN" --deploy-seconds 1
ENDPOINT=http://127.0.0.1:$PORT
export GOOGLE_OAUTH_ACCESS_TOKEN=$TOKEN
BASE=$ENDPOINT/v2/projects/local/locations/europe-west1
get() { curl -s -H "Authorization: Bearer $TOKEN" "$BASE$1"; }
requests() { python3 -c '
import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["method"] in sys.argv[2:]))' "$TMP/fake/requests.jsonl" "$@"; }

deploy_yaml() { # deploy_yaml FILE IMAGE-TAG [extra with: lines]
    cat > "$1" <<Y
substitutions: {_MODEL_SHA: m1, _KEDRO_ENV: staging}
steps:
- id: deploy
  uses: cloudrun-deploy
  with:
    service: purchase-predict-api
    image: gcr.io/\$PROJECT_ID/purchase-predict-api:$2
    region: europe-west1
    port: 80
    endpoint: '$ENDPOINT'
    env-vars: {ENV: \$_KEDRO_ENV, MODEL_SHA: \$_MODEL_SHA}
${3:-}
Y
}

# 1. The seed's staging deploy: a new service, open to everyone.
deploy_yaml d1.yaml sha1 "    allow-unauthenticated: true"
rc=$(run_kiln out1 run d1.yaml --report r1.json)
check "new service: exit 0" test "$rc" = 0
check "gcloud's first line" grep -qF "[deploy] Deploying container to Cloud Run service [purchase-predict-api] in project [local] region [europe-west1]" out1
check "...a new service" grep -qF "[deploy] Deploying new service..." out1
check "...IAM set" grep -qF "Setting IAM Policy... (allowing unauthenticated invocations)" out1
check "...deployed and serving" grep -qE '\[deploy\] Service \[purchase-predict-api\] revision \[purchase-predict-api-00001-[a-z0-9]+\] has been deployed and is serving 100 percent of traffic.' out1
check "...its URL" grep -qE '\[deploy\] Service URL: https://' out1
check "outputs url and revision in the report" python3 -c '
import json,sys
o=json.load(open("r1.json"))["steps"][0]["outputs"]
assert o["url"].startswith("https://") and o["revision"].startswith("purchase-predict-api-00001-"), o'
svc=$(get /services/purchase-predict-api)
check "the service runs the image on port 80 with the env" python3 -c '
import json,sys
s=json.loads(sys.argv[1]); c=s["template"]["containers"][0]
assert c["image"]=="gcr.io/local/purchase-predict-api:sha1", c
assert c["ports"][0]["containerPort"]==80, c
assert {e["name"]:e["value"] for e in c["env"]}=={"ENV":"staging","MODEL_SHA":"m1"}, c
assert s["terminalCondition"]["state"]=="CONDITION_SUCCEEDED", s' "$svc"
check "allUsers may invoke it" grep -q allUsers <<<"$(curl -s -X POST -H "Authorization: Bearer $TOKEN" "$BASE/services/purchase-predict-api:getIamPolicy")"
check "the token is in no log or report" eval "! grep -qF '$TOKEN' out1 r1.json"

# 2. An update: a new revision; a variable set before and not named now stays.
deploy_yaml d2.yaml sha2
sed -i 's/MODEL_SHA: \$_MODEL_SHA//; s/, }/}/; s/_MODEL_SHA: m1, //' d2.yaml
rc=$(run_kiln out2 run d2.yaml)
check "update: exit 0" test "$rc" = 0
check "...not a new service" grep -qF "[deploy] Deploying..." out2
check "...revision 2" grep -qE 'revision \[purchase-predict-api-00002-[a-z0-9]+\]' out2
check "...MODEL_SHA kept, image replaced" python3 -c '
import json,sys
c=json.loads(sys.argv[1])["template"]["containers"][0]
assert c["image"].endswith(":sha2") and {e["name"] for e in c["env"]}=={"ENV","MODEL_SHA"}, c' "$(get /services/purchase-predict-api)"
check "...IAM left alone (unchanged)" test "$(grep -c setIamPolicy "$TMP/fake/requests.jsonl")" = 1

# 3. A revision that does not start.
deploy_yaml d3.yaml fail-deploy
rc=$(run_kiln out3 run d3.yaml --report r3.json)
check "failed revision: exit 1" test "$rc" = 1
check "...Cloud Run's message" grep -qF "deployment of purchase-predict-api failed: Revision 'purchase-predict-api-00003-" out3
check "...the container that did not listen" grep -qF "failed to start and listen on the port" out3

# 4. A deployment slower than wait-timeout.
deploy_yaml d4.yaml sha4 "    wait-timeout: 300ms"
rc=$(run_kiln out4 run d4.yaml)
check "wait-timeout: exit 1" test "$rc" = 1
check "...saying the operation goes on" grep -qE "service purchase-predict-api was not deployed within 0.3s \(operation projects/local/locations/europe-west1/operations/.* goes on in Cloud Run\)" out4

# 5. Credentials and reachability.
rc=$(GOOGLE_OAUTH_ACCESS_TOKEN=wrong run_kiln out5 run d2.yaml)
check "wrong token: exit 1" test "$rc" = 1
check "...401 and what to check" grep -qF "the Cloud Run API refused reading service purchase-predict-api (HTTP 401): UNAUTHENTICATED: Request had invalid authentication credentials." out5
check "...check the token" grep -qF "check the access token (token:, GOOGLE_OAUTH_ACCESS_TOKEN)" out5
sed "s|endpoint: '$ENDPOINT'|endpoint: 'http://127.0.0.1:1'|" d2.yaml > d6.yaml
rc=$(run_kiln out6 run d6.yaml)
check "no server: exit 1" test "$rc" = 1
check "...saying where" grep -qF "cannot reach the Cloud Run API at http://127.0.0.1:1 while reading service purchase-predict-api" out6
sed "/endpoint:/d" d2.yaml > d7.yaml
rc=$(env -u GOOGLE_OAUTH_ACCESS_TOKEN -u CLOUDSDK_AUTH_ACCESS_TOKEN -u CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN "$KILN" run d7.yaml >out7 2>&1; echo $?)
check "Google's endpoint without a token: exit 1, nothing sent" test "$rc" = 1
check "...saying how to give one" grep -qF "no access token for https://run.googleapis.com: give token:" out7

# 6. Cloud Build's form: gcloud run deploy, endpoint from gcloud's override variable.
n_before=$(requests POST PATCH)
cat > cb.yaml <<'Y'
steps:
- name: gcr.io/cloud-builders/gcloud
  args: [run, deploy, other-api, --image=gcr.io/local/other:1, --region=europe-west1, --platform=managed, --port=8080, --no-allow-unauthenticated, '--set-env-vars=A=1,B=2']
Y
rc=$(CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN=$ENDPOINT/ run_kiln out8 run cb.yaml)
check "gcloud run deploy step: exit 0" test "$rc" = 0
check "...runs through cloudrun-deploy" grep -qF "'gcloud run' runs through plugin 'cloudrun-deploy'" out8
check "...one more create" test "$(requests POST PATCH)" -gt "$n_before"
check "...with its flags" python3 -c '
import json,sys
c=json.loads(sys.argv[1])["template"]["containers"][0]
assert c["image"]=="gcr.io/local/other:1" and c["ports"][0]["containerPort"]==8080, c
assert {e["name"]:e["value"] for e in c["env"]}=={"A":"1","B":"2"}, c' "$(get /services/other-api)"

# 7. A dry run sends nothing and plans the PATCH and the IAM change.
n_before=$(requests POST PATCH)
deploy_yaml d9.yaml sha9 "    allow-unauthenticated: true"
rc=$(run_kiln out9 run --dry-run d9.yaml --plan-dir plans)
check "dry run: exit 0" test "$rc" = 0
check "...no write reached Cloud Run" test "$(requests POST PATCH)" = "$n_before"
check "...the plan" python3 -c '
import json,glob,sys
e=[json.loads(l) for f in glob.glob("plans/plan-*.jsonl") for l in open(f)][0]
assert e["plugin"]=="cloudrun-deploy" and e["installed"] is True, e
r=e["requests"]
assert r[0]["method"]=="PATCH" and r[0]["url"]==sys.argv[1]+"/services/purchase-predict-api?allowMissing=true", r[0]
assert r[0]["body"]["template"]["containers"][0]["image"]=="gcr.io/local/purchase-predict-api:sha9", r[0]
assert r[1]["url"].endswith(":setIamPolicy") and "add allUsers" in r[1]["change"], r[1]
' "$BASE"

finish
