#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# How kiln authenticates to a cluster, beyond a bearer token: kubeconfig
# users with a client certificate (inline -data or files beside the
# kubeconfig) and exec credential plugins (client.authentication.k8s.io, as
# gke-gcloud-auth-plugin, `aws eks get-token` and kubelogin are), for the
# k8s-deploy step and the kubernetes executor. The fake API server serves
# HTTPS and trusts one client CA (--client-ca, as kube-apiserver's
# --client-ca-file); the real kubectl uses the very same kubeconfigs, which
# checks both the fake and the kubeconfigs. Needs openssl; kubectl is
# required when KILN_REQUIRE_KUBECTL=1 (.ci/run).
source "$(dirname "$0")/lib.sh"
FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_k8s.py
command -v openssl >/dev/null || skip_test "no openssl to make certificates"

if ! KUBECTL_BIN=$(bash "$KILN_SOURCE_DIR/scripts/kubectl.sh" 2>"$TMP/kubectl-why"); then
    [ "${KILN_REQUIRE_KUBECTL:-0}" = 1 ] && { echo "FAIL - kubectl is required: $(cat "$TMP/kubectl-why")"; exit 1; }
    echo "skip - kubectl checks: $(cat "$TMP/kubectl-why")"
    KUBECTL_BIN=
fi

echo "# certificates: the server's, a client CA, a client of it, a client of another CA"
ossl() { openssl "$@" >>"$TMP/openssl.out" 2>&1 || { echo "openssl $1 failed: $(tail -3 "$TMP/openssl.out")"; exit 1; }; }
EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
ossl req -x509 "${EC[@]}" -keyout server.key -out server.crt -days 1 -subj /CN=kiln-fake-k8s \
    -addext subjectAltName=IP:127.0.0.1
ossl req -x509 "${EC[@]}" -keyout ca.key -out ca.crt -days 1 -subj /CN=kiln-test-client-ca
ossl req "${EC[@]}" -keyout client.key -out client.csr -subj /CN=kiln-deployer
ossl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1
ossl req -x509 "${EC[@]}" -keyout rogue.key -out rogue.crt -days 1 -subj /CN=rogue

TOKEN=tok-$MARK
start_fake "$TMP/fake" --token "$TOKEN" --namespaces default,api-purchase --tls-cert server.crt \
    --tls-key server.key --client-ca ca.crt
SERVER=https://127.0.0.1:$PORT
REQ=$TMP/fake/requests.jsonl

# kubeconfig DIR USER-MAPPING: DIR/kubeconfig whose one context uses that user
kubeconfig() {
    mkdir -p "$1"
    cat >"$1/kubeconfig" <<Y
apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster: {server: '$SERVER', certificate-authority-data: '$(base64 -w0 server.crt)'}
contexts: [{name: fake, context: {cluster: fake, user: u, namespace: api-purchase}}]
users: [{name: u, user: $2}]
Y
}
kubeconfig kc-cert-data "{client-certificate-data: '$(base64 -w0 client.crt)', client-key-data: '$(base64 -w0 client.key)'}"
kubeconfig kc-cert-files "{client-certificate: client.crt, client-key: keys/client.key}"
mkdir -p kc-cert-files/keys && cp client.crt kc-cert-files/ && cp client.key kc-cert-files/keys/
kubeconfig kc-rogue "{client-certificate-data: '$(base64 -w0 rogue.crt)', client-key-data: '$(base64 -w0 rogue.key)'}"
kubeconfig kc-none "{}"
# An exec plugin: relative to the kubeconfig, with args and env:, and it
# checks what kubectl passes (KUBERNETES_EXEC_INFO, non-interactive).
EXEC_USER="{exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/cred, args: [token],
  env: [{name: CRED_SECRET, value: '$TOKEN'}], installHint: 'get it from your platform team',
  interactiveMode: IfAvailable}}"
kubeconfig kc-exec "$EXEC_USER"
mkdir -p kc-exec/bin
cat >kc-exec/bin/cred <<'SH'
#!/bin/sh
echo "called $*" >>"$(dirname "$0")/calls"
case $KUBERNETES_EXEC_INFO in
  *'"kind":"ExecCredential"'*'"interactive":false'*) ;;
  *) echo "unexpected KUBERNETES_EXEC_INFO: $KUBERNETES_EXEC_INFO" >&2; exit 9 ;;
esac
case $1 in
  token) printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"%s"}}\n' "$CRED_SECRET" ;;
  cert) python3 -c 'import json,sys; print(json.dumps({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",
    "status":{"clientCertificateData":open(sys.argv[1]).read(),"clientKeyData":open(sys.argv[2]).read()}}))' "$CRT" "$KEY" ;;
  renew) printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"%s","expirationTimestamp":"%s"}}\n' \
      "$CRED_SECRET" "$(date -u -d "@$(( $(date +%s) + 61 ))" +%Y-%m-%dT%H:%M:%SZ)" ;;
  *) echo "error: not logged in; run 'platform login' first" >&2; exit 4 ;;
esac
SH
chmod +x kc-exec/bin/cred
kubeconfig kc-exec-cert "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: '$TMP/kc-exec/bin/cred', args: [cert],
  env: [{name: CRT, value: '$TMP/client.crt'}, {name: KEY, value: '$TMP/client.key'}]}}"
kubeconfig kc-exec-renew "{exec: {apiVersion: client.authentication.k8s.io/v1, command: '$TMP/kc-exec/bin/cred', args: [renew],
  env: [{name: CRED_SECRET, value: '$TOKEN'}]}}"
kubeconfig kc-exec-fail "{exec: {apiVersion: client.authentication.k8s.io/v1, command: '$TMP/kc-exec/bin/cred', args: [login]}}"
kubeconfig kc-exec-absent "{exec: {apiVersion: client.authentication.k8s.io/v1, command: gke-gcloud-auth-plugin-$MARK,
  installHint: 'Install gke-gcloud-auth-plugin for use with kubectl by following https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin'}}"

cat >cm.yaml <<'Y'
apiVersion: v1
kind: ConfigMap
metadata: {name: auth-check}
data: {who: nobody}
Y
# deploy NAME WHO: k8s-deploy of a ConfigMap with data.who=WHO through kc-NAME
deploy() {
    sed "s/nobody/$2/" cm.yaml >"cm-$1.yaml"
    cat >"deploy-$1.yaml" <<Y
steps:
- {id: deploy, uses: k8s-deploy, with: {manifests: [cm-$1.yaml], kubeconfig: '$TMP/kc-$1/kubeconfig'}}
Y
    run_kiln "out-$1" run "deploy-$1.yaml"
}
# last_auth: how the fake saw the last PATCH (apply): "cn=CN token=BOOL"
last_auth() { python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
p=[x for x in r if x["method"]=="PATCH"][-1]
print("cn=%s token=%s" % (p.get("client_cn"), p["authorization"]))' "$REQ"; }
kc_get() { "$KUBECTL_BIN" --kubeconfig "$TMP/kc-$1/kubeconfig" get configmap auth-check -o jsonpath='{.data.who}' 2>&1; }

echo "# k8s-deploy: a client certificate, inline and in files"
rc=$(deploy cert-data cert-data)
check "client-certificate-data: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "...the source says how it authenticated" grep -qF "context fake, client certificate)" out-cert-data
check "...the fake saw the certificate, no token" [ "$(last_auth)" = "cn=kiln-deployer token=False" ]
rc=$(deploy cert-files cert-files)
check "client-certificate and client-key files, relative to the kubeconfig: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "...applied by the certificate's user" [ "$(last_auth)" = "cn=kiln-deployer token=False" ]
if [ -n "$KUBECTL_BIN" ]; then
    check "kubectl with the same kubeconfig reads what kiln applied" [ "$(kc_get cert-files)" = cert-files ]
fi
rc=$(deploy rogue rogue)
check "a certificate of another CA: exit 1 (exit $rc)" [ "$rc" = 1 ]
check "...the TLS refusal named, with the API server" grep -qE "cannot reach the Kubernetes API at $SERVER .*(SSL|TLS|alert|certificate)" out-rogue
rc=$(deploy none none)
check "no credentials at all: exit 1 (exit $rc)" [ "$rc" = 1 ]
check "...the API server's 401 named" grep -qF "Unauthorized" out-none
if [ -n "$KUBECTL_BIN" ]; then
    check "kubectl is refused the same way with kc-rogue" bash -c '! "$1" --kubeconfig "$2" get configmap auth-check >/dev/null 2>&1' _ "$KUBECTL_BIN" "$TMP/kc-rogue/kubeconfig"
fi

echo "# k8s-deploy: an exec credential plugin"
rm -f kc-exec/bin/calls
rc=$(deploy exec exec)
check "exec plugin with a token: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "...the plugin ran once, with its args" [ "$(cat kc-exec/bin/calls)" = "called token" ]
check "...the source says so" grep -qF "context fake, exec plugin's token)" out-exec
check "...the fake saw a bearer token, no certificate" [ "$(last_auth)" = "cn=None token=True" ]
check "...the token is not in kiln's output" bash -c '! grep -qF "$1" "$2"' _ "$TOKEN" out-exec
if [ -n "$KUBECTL_BIN" ]; then
    check "kubectl with the same exec kubeconfig reads it" [ "$(kc_get exec)" = exec ]
fi
rc=$(deploy exec-cert exec-cert)
check "exec plugin with a client certificate: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "...the fake saw the certificate" [ "$(last_auth)" = "cn=kiln-deployer token=False" ]
rc=$(deploy exec-fail exec-fail)
check "a failing exec plugin: exit 1 (exit $rc)" [ "$rc" = 1 ]
check "...its exit code and its last stderr line" grep -qF "user u: the credential plugin $TMP/kc-exec/bin/cred exited 4: error: not logged in; run 'platform login' first" out-exec-fail
rc=$(deploy exec-absent exec-absent)
check "an exec plugin that is not installed: exit 1 (exit $rc)" [ "$rc" = 1 ]
check "...says so with the kubeconfig's installHint" grep -qF "the credential plugin gke-gcloud-auth-plugin-$MARK is not installed (not found in PATH): Install gke-gcloud-auth-plugin for use with kubectl" out-exec-absent

echo "# the kubernetes executor: the same kubeconfigs"
cat >local.yaml <<'Y'
steps:
- {id: here, script: 'echo ran here'}
Y
n_before=$(wc -l <"$REQ")
rc=$(KUBECONFIG=$TMP/kc-exec-cert/kubeconfig run_kiln out-x-cert run local.yaml --executor kubernetes)
check "executor with an exec plugin's certificate: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "...it says how it reached the cluster" grep -qF "context fake, exec plugin's client certificate, namespace api-purchase" out-x-cert
check "...its sweeps of leftovers went out as the certificate's user" python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
g=[x for x in r if x["method"]=="GET" and x["path"].endswith("/pods")]
assert g and all(x.get("client_cn")=="kiln-deployer" and x["status"]==200 for x in g), r' "$REQ" "$n_before"
rc=$(KUBECONFIG=$TMP/kc-exec-fail/kubeconfig run_kiln out-x-fail run local.yaml --executor kubernetes)
check "executor with a failing exec plugin: exit 2 before anything runs (exit $rc)" [ "$rc" = 2 ]
check "...the plugin's message" grep -qF "executor kubernetes: $TMP/kc-exec-fail/kubeconfig: user u: the credential plugin" out-x-fail
check "...the step did not run" bash -c '! grep -qF "ran here" out-x-fail'

echo "# the kubernetes executor renews an exec plugin's credential that expires during the build"
# The plugin's tokens last 61 s, and kiln renews 60 s before the end: every
# request after the first second asks again. The step's Pod never runs (this
# fake has no kubelet); its timeout deletes it, later requests renew.
cat >pod.yaml <<'Y'
steps:
- {id: waits, name: busybox, args: [sleep, '60'], timeout: 3s}
Y
rm -f kc-exec/bin/calls
n_before=$(wc -l <"$REQ")
rc=$(KUBECONFIG=$TMP/kc-exec-renew/kubeconfig run_kiln out-renew run pod.yaml --executor kubernetes)
check "the step times out, as it must here (exit $rc)" [ "$rc" = 1 ]
check "...saying TIMEOUT" has_line out-renew "TIMEOUT"
check "...the plugin was asked again during the build" [ "$(grep -c 'called renew' kc-exec/bin/calls)" -ge 2 ]
check "...kiln says it renewed them" has_line out-renew "executor kubernetes: credentials renewed (kubeconfig $TMP/kc-exec-renew/kubeconfig, context fake, exec plugin's token)"
check "...no request was refused" python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
assert r and all(x["status"]!=401 for x in r) and any(x["method"]=="DELETE" and "/pods/" in x["path"] for x in r), r' "$REQ" "$n_before"

echo "# k8s-deploy renews an exec plugin's credential during a rollout longer than a token lives"
# A second API server (the same certificates) whose rollouts take 8 s and
# which takes the tokens the plugin hands out (--token-file), each for 4 s
# only: a step that kept its first token would get 401 while it waits. The
# plugin says its tokens end 61 s on, so kiln, which renews within 60 s of
# the end, asks again before every request after the first second.
start_fake "$TMP/fake2" --namespaces default,api-purchase --tls-cert server.crt --tls-key server.key \
    --client-ca ca.crt --token-file "$TMP/tokens" --rollout-seconds 8
REQ2=$TMP/fake2/requests.jsonl
SERVER=https://127.0.0.1:$PORT kubeconfig kc-rotate "{exec: {apiVersion: client.authentication.k8s.io/v1,
  command: ./bin/cred, args: [stated]}}"
SERVER=https://127.0.0.1:$PORT kubeconfig kc-rotate-unstated "{exec: {apiVersion: client.authentication.k8s.io/v1,
  command: '$TMP/kc-rotate/bin/cred', args: [unstated]}}"
mkdir -p kc-rotate/bin
cat >kc-rotate/bin/cred <<SH
#!/bin/sh
# a new token at each call, which the fake takes for 4 s
n=\$(( \$(cat $TMP/kc-rotate/n 2>/dev/null || echo 0) + 1 ))
echo \$n >$TMP/kc-rotate/n
echo "called \$1" >>$TMP/kc-rotate/calls
tok=rot-\$n-$MARK
echo "\$tok \$(( \$(date +%s) + 4 ))" >>$TMP/tokens
case \$1 in
  stated) printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"%s","expirationTimestamp":"%s"}}\n' \
      "\$tok" "\$(date -u -d "@\$(( \$(date +%s) + 61 ))" +%Y-%m-%dT%H:%M:%SZ)" ;;
  *) printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"%s"}}\n' "\$tok" ;;
esac
SH
chmod +x kc-rotate/bin/cred
# rollout NAME KC: a 2-replica Deployment NAME applied through kc-KC, waited for
rollout() {
    cat >"web-$1.yaml" <<Y
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: 2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec: {containers: [{name: web, image: 'registry.example/$1:1'}]}
Y
    cat >"rollout-$1.yaml" <<Y
steps:
- {id: deploy, uses: k8s-deploy, with: {manifests: [web-$1.yaml], kubeconfig: '$TMP/kc-$2/kubeconfig', timeout: 2m}}
Y
    run_kiln "out-$1" run "rollout-$1.yaml"
}
t0=$(date +%s)
rc=$(rollout web rotate)
t1=$(date +%s)
cat out-web
check "a rollout longer than a token lives: exit 0 (exit $rc)" [ "$rc" = 0 ]
check "...it rolled out" has_line out-web 'deployment "web" successfully rolled out'
check "...and took longer than a token lives (at least 5 s: $((t1 - t0)) s)" [ $((t1 - t0)) -ge 5 ]
check "...the plugin was asked again during the step ($(grep -c 'called stated' kc-rotate/calls) calls)" \
    [ "$(grep -c 'called stated' kc-rotate/calls)" -ge 2 ]
check "...kiln says it renewed them" has_line out-web "credentials renewed (kubeconfig $TMP/kc-rotate/kubeconfig, context fake, exec plugin's token)"
check "...no request was refused, the rollout was polled with a token" python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
g=[x for x in r if x["method"]=="GET" and x["path"].endswith("/deployments/web")]
assert len(g) >= 2 and all(x["authorization"] for x in g), g
assert all(x["status"] != 401 for x in r), [x for x in r if x["status"] == 401]' "$REQ2"
check "...no token in kiln's output" bash -c '! grep -qF "rot-" "$1"' _ out-web
# The same without an expirationTimestamp: nothing tells kiln to renew, and
# the server's 401 is what the user sees (which the check above would meet).
rc=$(rollout web2 rotate-unstated)
check "a token that ends unannounced: exit 1 (exit $rc)" [ "$rc" = 1 ]
check "...the plugin was asked once" [ "$(grep -c 'called unstated' kc-rotate/calls)" = 1 ]
check "...the 401 named" grep -qE "refused the credentials \\(401 Unauthorized\\) while (waiting for deployment.apps/web2 to roll out|applying deployment.apps/web2)" out-web2

finish
