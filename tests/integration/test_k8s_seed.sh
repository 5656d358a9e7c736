#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seed's first pipeline (pipelines/hello/cloudbuild.yaml: a diamond,
# substitutions, a step output, a finally step) end to end under
# `--executor kubernetes` with kiln-pod-helper, on the fake API server whose
# kubelet runs the Pods with podman. The pipeline's images (git, python,
# ubuntu) cannot be pulled here: they are tagged onto the busybox image in
# the private storage, so the steps' shell commands run for real in Pods.
#
# Needs podman, runc, a static busybox, root (scripts/deps.d/k8s-executor).
# KILN_SKIP_ENGINE_TESTS=1 skips it.
source "$(dirname "$0")/lib.sh"

FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_k8s.py
HELPER=${KILN_BUILD_DIR:-$KILN_SOURCE_DIR/build}/tools/kiln-pod-helper/kiln-pod-helper
cannot_run() {
    [ "${KILN_SKIP_ENGINE_TESTS:-0}" = 1 ] && skip_test "$*"
    echo "FAIL - cannot run: $*"
    echo "       (install: podman runc busybox-static; or set KILN_SKIP_ENGINE_TESTS=1)"
    exit 1
}
for tool in podman runc python3 curl; do
    command -v "$tool" >/dev/null || cannot_run "$tool is not installed"
done
[ -x "$HELPER" ] || cannot_run "no $HELPER (a static libc is needed to build it: libc6-dev)"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q static || BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || cannot_run "no static busybox (busybox-static) to make the steps' image"
[ "$(id -u)" = 0 ] || cannot_run "rootful podman needs root (uid $(id -u))"

echo "# fixture: podman (the fake kubelet's runtime), the steps' image, the helper's image, fake API servers"
E=$TMP/engine
mkdir -p "$E/tmp"
. "$KILN_SOURCE_DIR/tests/tools/podman_engine.sh"
podman_engine_conf "$E"
export CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf
export CONTAINERS_REGISTRIES_CONF=$E/registries.conf
mkdir -p "$E/root/bin" "$E/root/tmp"
cp "$BUSYBOX" "$E/root/bin/busybox"
for a in sh echo sleep cat seq test kill true false touch; do ln -s busybox "$E/root/bin/$a"; done
tar -C "$E/root" -cf "$E/root.tar" .
IMG=localhost/kiln-k8s-busybox:1
TMPDIR=$E/tmp podman import "$E/root.tar" "$IMG" >"$E/import.log" 2>&1 ||
    { cat "$E/import.log"; cannot_run "podman import failed"; }
# The helper's image as `make pod-helper-image` makes it: FROM scratch, the
# static binary at /kiln-pod-helper (imported: no build tool needed).
mkdir -p "$E/helper"
cp "$HELPER" "$E/helper/kiln-pod-helper"
tar -C "$E/helper" -cf "$E/helper.tar" .
HIMG=localhost/kiln-pod-helper:test
TMPDIR=$E/tmp podman import "$E/helper.tar" "$HIMG" >"$E/himport.log" 2>&1 ||
    { cat "$E/himport.log"; cannot_run "podman import of the helper failed"; }
no_containers() {
    [ -z "$(TMPDIR=$E/tmp podman ps -a --filter label=kiln-fake-k8s=1 --format '{{.Names}}' 2>/dev/null)" ]
}

start_fake "$TMP/k8s" --namespaces default,builds --kubelet podman --kubelet-dir "$TMP/k8s/kubelet"
SERVER=http://127.0.0.1:$PORT
export KUBECONFIG=$TMP/kubeconfig
cat >"$KUBECONFIG" <<Y
apiVersion: v1
kind: Config
current-context: fake
contexts: [{name: fake, context: {cluster: fake, user: u, namespace: builds}}]
clusters: [{name: fake, cluster: {server: "$SERVER"}}]
users: [{name: u, user: {}}]
Y
EXEC="kubernetes:helperImage=$HIMG"
pods_left() { curl -s "$SERVER/api/v1/namespaces/builds/pods" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'; }
no_pods() { [ "$(pods_left)" = 0 ]; }
times() {
    python3 -c 'import json,sys,datetime
def t(s): return datetime.datetime.fromisoformat(s.rstrip("Z")).timestamp()
for s in json.load(open(sys.argv[1]))["steps"]:
    if "timing" in s: print(s["key"], t(s["timing"]["startTime"]), t(s["timing"]["endTime"]))' "$1"
}
before() { times "$1" | awk -v a="$2" -v b="$3" '$1==a{ae=$3} $1==b{bs=$2} END{exit !(ae!="" && bs!="" && ae<=bs)}'; }
overlap() { times "$1" | awk -v a="$2" -v b="$3" '$1==a{as=$2;ae=$3} $1==b{bs=$2;be=$3} END{exit !(as<be && bs<ae)}'; }

for name in gcr.io/cloud-builders/git python:3.11 ubuntu; do
    TMPDIR=$E/tmp podman tag "$IMG" "$name" >/dev/null 2>&1 || cannot_run "podman tag $name failed"
done

echo "# pipelines/hello as Pods"
mkdir -p hello/ws && cd hello
rc=$(run_kiln out.txt run "$KILN_SOURCE_DIR/pipelines/hello/cloudbuild.yaml" --executor "$EXEC" \
    --report r.json --workspace ws --sink "jsonl:path=$PWD/log.jsonl")
check "the build succeeds (exit $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -30 out.txt
check "every step SUCCESS, finally too" \
    [ "$(status r.json fetch)$(status r.json test)$(status r.json lint)$(status r.json package)$(status r.json summary)" = SUCCESSSUCCESSSUCCESSSUCCESSSUCCESS ]
check "substitutions reach the Pod" has_line out.txt "[fetch] fetching hello at"
check "a script step runs in its Pod" has_line out.txt "[test] test 3 ok"
check "a step output crosses Pods" has_line out.txt "[package] packaging hello (lint saw 42 lines)"
check "the Pod's file is in the workspace" has_line ws/out/package.txt "packaging hello (lint saw 42 lines)"
check "the finally step ran (locally: it names no image)" has_line out.txt "[summary] build finished"
check "4 Pods were made (the steps with an image)" [ "$(python3 -c 'import json,sys; print(sum(1 for x in open(sys.argv[1]) if (l:=json.loads(x))["method"]=="POST" and l["path"].endswith("/pods")))' "$TMP/k8s/requests.jsonl")" = 4 ]
check "framed where the step names its command (fetch, test: init container)" python3 -c 'import json,sys
n=sum(1 for l in map(json.loads, open(sys.argv[1])) if l["method"]=="POST" and l["path"].endswith("/pods")
      and (l["body"]["spec"].get("initContainers") or [{}])[0].get("name")=="kiln-helper")
sys.exit(0 if n>=2 else 1)' "$TMP/k8s/requests.jsonl"
check "no Pod is left" wait_for 60 no_pods
check "the kubelet left no container" wait_for 120 no_containers
cd "$TMP"
finish
