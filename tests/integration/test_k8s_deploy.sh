#!/usr/bin/env bash
# k8s-deploy against tests/fakes/fake_k8s.py (no kube-apiserver runs on this
# machine; test_fake_k8s.sh checks the fake with the real kubectl): the seed's
# manifests applied through a kubeconfig context, re-applied, rolled out;
# missing namespace, field conflicts, a failed rollout, a timeout, a bad
# token, no server; Cloud Build's kubectl form; a dry run sends nothing.
source "$(dirname "$0")/lib.sh"

FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_k8s.py
TOKEN=tok-$MARK
start_fake "$TMP/fake" --token "$TOKEN" --namespaces default,kube-system,api-purchase --rollout-seconds 1.5
SERVER=http://127.0.0.1:$PORT

# A kubeconfig as `gcloud container clusters get-credentials` leaves it.
export KUBECONFIG=$TMP/kubeconfig
cat > "$KUBECONFIG" <<Y
apiVersion: v1
kind: Config
current-context: other
clusters:
- {name: gke-api, cluster: {server: '$SERVER'}}
- {name: elsewhere, cluster: {server: 'http://127.0.0.1:1'}}
contexts:
- {name: gke_local_europe-west1-b_purchase-predict-api, context: {cluster: gke-api, user: deployer}}
- {name: other, context: {cluster: elsewhere, user: deployer}}
users:
- {name: deployer, user: {token: '$TOKEN'}}
Y
mkdir -p ws && cp -r "$KILN_SOURCE_DIR/pipelines/purchase_predict_api/k8s" ws/
cd ws
patches() { python3 -c '
import json,sys
n=0
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r["method"]=="PATCH": n+=1
print(n)' "$TMP/fake/requests.jsonl"; }
get() { curl -s -H "Authorization: Bearer $TOKEN" "$SERVER$1"; }

# 1. The seed's master deploy: render, then k8s-deploy with its options.
deploy_yaml() { # deploy_yaml FILE SHA [extra with: lines]
    cat > "$1" <<Y
substitutions: {_MODEL_SHA: m1, _KEDRO_ENV: production}
steps:
- id: render
  name: ubuntu
  script: |
    mkdir -p out
    for f in k8s/*.yaml; do sed -e "s/DOCKER_TAG/$2/g" -e "s/PROJECT_ID/local/g" "\$f"; echo ---; done > out/config.yaml
- id: deploy
  uses: k8s-deploy
  with:
    manifests: out/config.yaml
    namespace: api-purchase
    cluster: purchase-predict-api
    location: europe-west1-b
    env-vars: {ENV: \$_KEDRO_ENV, MODEL_SHA: \$_MODEL_SHA}
${3:-}
Y
}
deploy_yaml d1.yaml sha1
rc=$(run_kiln out1 run d1.yaml --report r1.json)
check "seed deploy: exit 0" test "$rc" = 0
check "the context for the GKE cluster is chosen (not the current one)" \
    grep -qF "applying 2 objects to $SERVER (kubeconfig $KUBECONFIG, context gke_local_europe-west1-b_purchase-predict-api)" out1
check "deployment created" grep -qF "[deploy] deployment.apps/purchase-predict-api created" out1
check "service created" grep -qF "[deploy] service/purchase-predict-api created" out1
check "kubectl's waiting lines" grep -qE 'Waiting for deployment "purchase-predict-api" rollout to finish: [0-9] (out of 2 new replicas have been updated|of 2 updated replicas are available)' out1
check "rolled out" grep -qF 'deployment "purchase-predict-api" successfully rolled out' out1
check "the token is in no log or report" eval "! grep -qF '$TOKEN' out1 r1.json"
check "two server-side apply PATCHes" test "$(patches)" = 2
check "...as application/apply-patch+yaml with fieldManager=kiln, force=false" python3 -c '
import json,sys
rs=[json.loads(l) for l in open(sys.argv[1])]
p=[r for r in rs if r["method"]=="PATCH"]
assert all(r["content_type"]=="application/apply-patch+yaml" and r["query"].get("fieldManager")=="kiln" and r["query"].get("force")=="false" for r in p), p
assert [r["path"] for r in p]==["/apis/apps/v1/namespaces/api-purchase/deployments/purchase-predict-api","/api/v1/namespaces/api-purchase/services/purchase-predict-api"], [r["path"] for r in p]
' "$TMP/fake/requests.jsonl"
dep=$(get /apis/apps/v1/namespaces/api-purchase/deployments/purchase-predict-api)
check "the cluster has the rendered image" grep -qF '"image": "gcr.io/local/purchase-predict-api:sha1"' <<<"$(python3 -m json.tool <<<"$dep")"
check "...and env-vars set on the container (ENV replaced, MODEL_SHA added)" python3 -c '
import json,sys
d=json.loads(sys.argv[1]); env={e["name"]:e["value"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
assert env=={"PORT":"80","ENV":"production","MODEL_SHA":"m1"}, env' "$dep"
check "applied = 2 in the report" test "$(jget r1.json 'j["steps"][1]["outputs"]["applied"]')" = 2

# 2. A new image: configured, generation 2, rolled out again.
deploy_yaml d2.yaml sha2
rc=$(run_kiln out2 run d2.yaml)
check "re-deploy: exit 0" test "$rc" = 0
check "serverside-applied" grep -qF "deployment.apps/purchase-predict-api serverside-applied" out2
check "waits for the new generation" grep -qF "Waiting for deployment spec update to be observed..." out2
check "generation 2 on the cluster" test "$(get /apis/apps/v1/namespaces/api-purchase/deployments/purchase-predict-api | jget /dev/stdin 'j["metadata"]["generation"]')" = 2

# 3. A namespace the cluster does not have.
deploy_yaml d3.yaml sha2 "    timeout: 20s"
sed -i 's/namespace: api-purchase/namespace: nope/' d3.yaml
sed -i 's/namespace: api-purchase$//' k8s/*.yaml 2>/dev/null || true
rc=$(run_kiln out3 run d3.yaml --report r3.json)
check "missing namespace: exit 1" test "$rc" = 1
check "...the server's words, with the manifest's file and line" \
    grep -qE '^\[deploy\] error: out/config.yaml:1: apply deployment.apps/purchase-predict-api in namespace nope: namespaces "nope" not found \(HTTP 404\)' out3
cp -r "$KILN_SOURCE_DIR/pipelines/purchase_predict_api/k8s" .  # restore

# 4. Another field manager: a conflict, unless forced.
deploy_yaml d4.yaml sha3 "    field_manager: other-team"
rc=$(run_kiln out4 run d4.yaml)
check "conflict with the fields kiln owns: exit 1" test "$rc" = 1
check "...the server's conflict message and what to do" \
    grep -qE 'conflict.*kiln.*set force_conflicts: true to take those fields over' out4
deploy_yaml d5.yaml sha3 "    field_manager: other-team
    force_conflicts: true"
rc=$(run_kiln out5 run d5.yaml)
check "force_conflicts: exit 0" test "$rc" = 0

# 5. A rollout that never completes, and one slower than the step's timeout.
deploy_yaml d6.yaml fail-rollout "    field_manager: other-team"
rc=$(run_kiln out6 run d6.yaml --report r6.json)
check "progress deadline exceeded: exit 1" test "$rc" = 1
check "...kubectl's words" grep -qF 'deployment "purchase-predict-api" exceeded its progress deadline' out6
deploy_yaml d7.yaml sha7 "    field_manager: other-team
    timeout: 300ms"
rc=$(run_kiln out7 run d7.yaml --report r7.json)
check "rollout slower than timeout: exit 1" test "$rc" = 1
check "...saying so" grep -qF 'deployment "purchase-predict-api" did not roll out within 0.3s' out7

# 6. Credentials and reachability.
cat > bad-token.yaml <<Y
steps:
- {id: deploy, uses: k8s-deploy, with: {manifests: [k8s/service.yaml], server: '$SERVER', token: wrong}}
Y
rc=$(run_kiln out8 run bad-token.yaml)
check "wrong token: exit 1" test "$rc" = 1
check "...401 named, with where the server came from" grep -qF "the Kubernetes API at $SERVER refused the credentials (401 Unauthorized) while asking which resources v1 has; check the token (the step's server option)" out8
cat > nowhere.yaml <<Y
steps:
- {id: deploy, uses: k8s-deploy, with: {manifests: [k8s/], context: other}}
Y
rc=$(run_kiln out9 run nowhere.yaml)
check "no server listening: exit 1" test "$rc" = 1
check "...saying which server and from where" grep -qF "cannot reach the Kubernetes API at http://127.0.0.1:1 while asking which resources" out9
check "...context named" grep -qF "context other" out9

# 7. Cloud Build's kubectl builder step, cluster from its env.
n_before=$(patches)
cat > cb.yaml <<'Y'
steps:
- name: gcr.io/cloud-builders/kubectl
  args: [apply, -f, k8s/service.yaml, -n, api-purchase]
  env: [CLOUDSDK_COMPUTE_ZONE=europe-west1-b, CLOUDSDK_CONTAINER_CLUSTER=purchase-predict-api]
Y
rc=$(run_kiln out10 run cb.yaml --project local)
check "kubectl apply step: exit 0" test "$rc" = 0
check "...runs through k8s-deploy" grep -qF "'kubectl apply' runs through plugin 'k8s-deploy'" out10
check "...and applies the service" grep -qF "service/purchase-predict-api serverside-applied" out10
check "...one PATCH more" test "$(patches)" = $((n_before + 1))

# 8. A dry run sends nothing and plans each PATCH.
n_before=$(patches)
rc=$(run_kiln out11 run --dry-run d2.yaml --plan-dir plans)
check "dry run: exit 0" test "$rc" = 0
check "...no PATCH reached the server" test "$(patches)" = "$n_before"
check "...the plan holds both PATCHes with their paths, bodies and the server" python3 -c '
import json,glob,sys
e=[json.loads(l) for f in glob.glob("plans/plan-*.jsonl") for l in open(f)]
d=[x for x in e if x["plugin"]=="k8s-deploy"][0]
assert d["installed"] is True
r=d["requests"]
assert [x["path"] for x in r]==["/apis/apps/v1/namespaces/api-purchase/deployments/purchase-predict-api?fieldManager=kiln&force=false","/api/v1/namespaces/api-purchase/services/purchase-predict-api?fieldManager=kiln&force=false"], r
assert all(x["server"]==sys.argv[1] and x["contentType"]=="application/apply-patch+yaml" for x in r)
assert r[0]["body"]["spec"]["template"]["spec"]["containers"][0]["image"]=="gcr.io/local/purchase-predict-api:sha2"
' "$SERVER"

# 8b. A dry run of Cloud Build's kubectl form: the log says what would
# really be applied (objects, namespace, server), taken from args, not the
# empty options (manifests [], namespace null) the step was given.
cat > cbdry.yaml <<'Y'
steps:
- name: gcr.io/cloud-builders/kubectl
  args: [apply, -f, k8s/deployment.yaml, -f, k8s/service.yaml, --namespace, api-purchase]
  env: [CLOUDSDK_COMPUTE_ZONE=europe-west1-b, CLOUDSDK_CONTAINER_CLUSTER=purchase-predict-api]
Y
n_before=$(patches)
rc=$(run_kiln out12 run --dry-run cbdry.yaml --project local --plan-dir plans12)
check "kubectl apply, dry run: exit 0, nothing sent" test "$rc:$(patches)" = "0:$n_before"
check "...the log names the Deployment, its namespace and the server" grep -qF \
    "would send PATCH $SERVER/apis/apps/v1/namespaces/api-purchase/deployments/purchase-predict-api?fieldManager=kiln&force=false (deployment.apps/purchase-predict-api)" out12
check "...and the Service" grep -qF \
    "would send PATCH $SERVER/api/v1/namespaces/api-purchase/services/purchase-predict-api?fieldManager=kiln&force=false (service/purchase-predict-api)" out12
check "...not the options it was given (manifests [], namespace null)" eval "! grep -qF 'would deploy with' out12"
check "...the plan holds the same two PATCHes" python3 -c '
import json,glob
e=[json.loads(l) for f in glob.glob("plans12/plan-*.jsonl") for l in open(f)]
assert [r["object"] for r in e[0]["requests"]]==["deployment.apps/purchase-predict-api","service/purchase-predict-api"], e'
# Without a cluster to ask, the server cannot be named: the log says why.
rc=$(KUBECONFIG=$TMP/none run_kiln out13 run --dry-run cbdry.yaml --project local --plan-dir plans13)
check "...without a kubeconfig: the PATCH path" grep -qF \
    "would send PATCH /apis/apps/v1/namespaces/api-purchase/deployments/purchase-predict-api?fieldManager=kiln&force=false (deployment.apps/purchase-predict-api)" out13
check "...and why no server is named, once" test "$(grep -c "note: server not known here: .*$TMP/none" out13)" = 1

# 9. https: the CA from the kubeconfig (certificate-authority-data), from
# ca_file, none (refused), or no verification on request.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/tls.key" \
    -out "$TMP/tls.crt" -days 1 -subj /CN=kiln-test-k8s -addext subjectAltName=IP:127.0.0.1 \
    >"$TMP/openssl.out" 2>&1 || { echo "openssl failed: $(cat "$TMP/openssl.out")"; exit 1; }
start_fake "$TMP/tls" --token "$TOKEN" --namespaces default,api-purchase --rollout-seconds 0.5 \
    --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key"
TLS_SERVER=https://127.0.0.1:$PORT
tls_kubeconfig() { # tls_kubeconfig FILE [CA-DATA-LINE]
    cat > "$1" <<Y
apiVersion: v1
kind: Config
current-context: tls
clusters:
- name: tls
  cluster:
    server: '$TLS_SERVER'
${2:-}
contexts: [{name: tls, context: {cluster: tls, user: deployer, namespace: api-purchase}}]
users: [{name: deployer, user: {token: '$TOKEN'}}]
Y
}
tls_kubeconfig "$TMP/kc-ca" "    certificate-authority-data: $(base64 -w0 "$TMP/tls.crt")"
tls_kubeconfig "$TMP/kc-noca"
for case in "ca-data|kubeconfig: '$TMP/kc-ca'" "ca-file|{kubeconfig: '$TMP/kc-noca', ca_file: '$TMP/tls.crt'}" \
            "none|kubeconfig: '$TMP/kc-noca'" "insecure|{kubeconfig: '$TMP/kc-noca', insecure_skip_tls_verify: true}"; do
    name=${case%%|*} with=${case#*|}
    [[ $with == \{* ]] && with="${with#\{}" && with="${with%\}}"
    cat > "tls-$name.yaml" <<Y
steps:
- {id: deploy, uses: k8s-deploy, with: {manifests: [k8s/deployment.yaml], $with}}
Y
    rc=$(run_kiln "out-tls-$name" run "tls-$name.yaml")
    if [ "$name" = none ]; then
        check "https, no CA: exit 1" test "$rc" = 1
        check "...the certificate problem named" grep -qF "cannot reach the Kubernetes API at $TLS_SERVER while asking which resources apps/v1 has: SSL certificate problem" "out-tls-$name"
    else
        check "https, $name: exit 0" test "$rc" = 0
        check "https, $name: rolled out" grep -qF 'deployment "purchase-predict-api" successfully rolled out' "out-tls-$name"
    fi
done

finish
