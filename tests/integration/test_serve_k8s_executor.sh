#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve --executor kubernetes (issue 12): a build of the server runs
# its steps as Pods on the fake API server (tests/fakes/fake_k8s.py),
# whose kubelet runs each Pod's container for real with podman (as
# test_k8s_executor.sh). Checked: the executor says where it runs in the
# build's log; a step's Pod sees the image's files; the build succeeds
# with its logs in the API; the build's Pods carry its id and none is left
# afterwards; a build cancelled through the API deletes its Pod; with
# workspace=pvc,fill=upload the server's checkout (whose origin is the
# server's own mirror, which no cluster can reach) reaches the Pods through
# the claim.
#
# Needs podman, runc, a static busybox and root; skipped without them
# unless KILN_REQUIRE_SHARED=1 (.ci/run) makes that a failure;
# KILN_SKIP_ENGINE_TESTS=1 always skips it.
source "$(dirname "$0")/lib.sh"
# k8s_env.sh first: serve_lib.sh's api (METHOD PATH) is the one used here
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"
source "$(dirname "$0")/serve_lib.sh"

cannot_run() {
    if [ "${KILN_SKIP_ENGINE_TESTS:-0}" != 1 ] && [ "${KILN_REQUIRE_SHARED:-0}" = 1 ]; then
        echo "FAIL - cannot run: $* (KILN_REQUIRE_SHARED=1; install scripts/deps.d/k8s-executor)"
        exit 1
    fi
    skip_test "$*"
}
echo "# fixture: podman (the fake kubelet's runtime), an image, the fake API server"
k8s_env_engine git
mkdir -p "$E/root/etc"
echo "from-the-image" >"$E/root/etc/image-marker"
IMG=localhost/kiln-serve-k8s:1
k8s_env_image sh echo sleep cat ls test true tar gzip
cleanup_k8s() { TMPDIR=$E/tmp podman rm -af -t 0 >/dev/null 2>&1 || true; }
trap 'cleanup_k8s; cleanup' EXIT
k8s_env_fake
kapi() { curl -s "$SERVER$1"; }
# pods_of BUILD: the build's Pods (label kiln.dev/build=BUILD), a count
pods_of() { kapi "/api/v1/namespaces/builds/pods?labelSelector=kiln.dev%2Fbuild%3D$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'; }
no_pods_of() { [ "$(pods_of "$1")" = 0 ]; }
has_pod_of() { [ "$(pods_of "$1")" -ge 1 ]; }

echo "# fixture: a repository whose steps run as Pods"
git init -q --bare -b master "$TMP/app.git"
git init -q -b master "$TMP/work"
sed "s|IMG|$IMG|" >"$TMP/work/cloudbuild.yaml" <<'Y'
substitutions: {_GATE: ""}
steps:
- id: inpod
  name: IMG
  entrypoint: sh
  args: ['-c', 'cat /etc/image-marker; test -e /etc/debian_version && echo HOST-ETC-SEEN; test -e /workspace/cloudbuild.yaml && echo CHECKOUT-SEEN; echo made > /workspace/made.txt; true']
- id: gate
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo waiting; while [ -n "$_GATE" ] && [ ! -e "/workspace/$_GATE" ]; do sleep 0.2; done; echo saw-$$(cat /workspace/made.txt)']
Y
git -C "$TMP/work" add -A
git -C "$TMP/work" commit -q -m first
git -C "$TMP/work" push -q "$TMP/app.git" master
cat >"$TMP/triggers.yaml" <<YAML
triggers:
- name: pods
  repo: $TMP/app.git
  branch: ^master\$
YAML

echo "# a build's steps as Pods"
start_serve --max-builds 2 --kill-grace 2s --executor kubernetes:context=fake
check "the server says the executor is ready" has_line "$TMP/serve.log" "executor kubernetes: ready"
id=$(run_trigger pods '{"branch": "master"}')
check "the build ends" wait_status 300 "$id" SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "... SUCCESS" test "$(bstatus "$id")" = SUCCESS
[ "$(bstatus "$id")" = SUCCESS ] || sed 's/^/  /' "$TMP/serve.log" | tail -20
curl -s "$BASE/api/builds/$id/log?step=inpod" >"$TMP/log1.json"
check "the step's Pod saw the image's file (API log)" \
    test "$(jq_ '"from-the-image" in [r["text"] for r in j["records"]]' <"$TMP/log1.json")" = True
check "... not the host's" test "$(jq_ '"HOST-ETC-SEEN" in [r["text"] for r in j["records"]]' <"$TMP/log1.json")" = False
check "the next Pod saw the first one's file" has_line "$TMP/data/builds/$id/logs/gate.log" "saw-made"
check "the build's log says where its Pods ran (open(), said once the build started)" \
    has_line "$TMP/data/builds/$id/logs/build.log" "executor kubernetes:"
check "Pods were created for the build (the fake's log)" \
    grep -q "\"kiln.dev/build\": *\"$id\"" "$K/requests.jsonl"
check "none of its Pods is left" wait_for 120 no_pods_of "$id"

echo "# a build cancelled through the API deletes its Pod"
c=$(run_trigger pods '{"branch": "master", "substitutions": {"_GATE": "never"}}')
check "the build's gate Pod runs" wait_for 300 sh -c "grep -q waiting '$TMP/data/builds/$c/logs/gate.log' 2>/dev/null"
api POST "/api/builds/$c:cancel" >/dev/null
check "cancel: 200" test "$(code)" = 200
check "the build ends CANCELLED" wait_status 300 "$c" CANCELLED SUCCESS FAILURE INTERNAL_ERROR
check "... CANCELLED" test "$(bstatus "$c")" = CANCELLED
check "none of its Pods is left" wait_for 120 no_pods_of "$c"
kill -TERM "$SERVE_PID"
RC=0
wait "$SERVE_PID" || RC=$?
check "kiln serve exits 0" test "$RC" = 0

echo "# workspace=pvc,fill=upload: the server's checkout reaches the Pods through the claim"
start_serve --max-builds 1 --kill-grace 2s --executor "kubernetes:context=fake,workspace=pvc,fill=upload,fillImage=$IMG"
u=$(run_trigger pods '{"branch": "master"}')
check "the build ends" wait_status 300 "$u" SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "... SUCCESS" test "$(bstatus "$u")" = SUCCESS
[ "$(bstatus "$u")" = SUCCESS ] || sed 's/^/  /' "$TMP/serve.log" | tail -20
check "the build's log says the checkout was uploaded" \
    grep -q "uploading the workspace .* into the claim: .* of gzip'd tar in 1 ConfigMap " "$TMP/data/builds/$u/logs/build.log"
check "... and the fill Pod unpacked it" grep -q "filled /workspace from the upload of" "$TMP/data/builds/$u/logs/build.log"
check "the step's Pod saw the checkout's file in the claim" has_line "$TMP/data/builds/$u/logs/inpod.log" "CHECKOUT-SEEN"
check "the claim's Pods share the workspace (the second step saw the first one's file)" \
    has_line "$TMP/data/builds/$u/logs/gate.log" "saw-made"
check "none of its Pods is left" wait_for 120 no_pods_of "$u"
kill -TERM "$SERVE_PID"
RC=0
wait "$SERVE_PID" || RC=$?
check "kiln serve exits 0" test "$RC" = 0
check "the kubelet left no container" wait_for 120 no_containers

finish
