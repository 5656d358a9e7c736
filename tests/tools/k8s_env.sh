# SPDX-License-Identifier: MIT
# The fake cluster of the kubernetes executor's tests (sourced after
# tests/integration/lib.sh, not run): a private rootful podman (the fake
# kubelet's runtime, tests/tools/podman_engine.sh), a busybox image, the fake
# API server with its kubelet, a kubeconfig and helpers. The same fixture as
# tests/integration/test_k8s_executor.sh sets up inline.
#
#   k8s_env_start
#       sets E (podman's dir), IMG (localhost/kiln-k8s-busybox:1), K (the
#       fake's dir: requests.jsonl, kubelet/), SERVER, KUBECONFIG (context
#       "fake", namespace "builds"), EXEC=kubernetes:context=fake, and
#       KUBECTL (an array: kubectl --context fake -n builds) or leaves
#       KUBECTL_BIN empty when no kubectl can be had (k8s_need_kubectl
#       then fails or skips).
#   api PATH          GET on the fake
#   count PLURAL      how many objects of PLURAL the namespace builds holds
#   log_has EXPR      some request of the fake's log satisfies EXPR (Python over l)
#   no_containers     the kubelet left no container

FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_k8s.py

cannot_run() {
    [ "${KILN_SKIP_ENGINE_TESTS:-0}" = 1 ] && skip_test "$*"
    echo "FAIL - cannot run: $*"
    echo "       (install: podman runc busybox-static kubectl; or set KILN_SKIP_ENGINE_TESTS=1)"
    exit 1
}

k8s_env_start() {
    local tool
    for tool in podman runc python3 curl; do
        command -v "$tool" >/dev/null || cannot_run "$tool is not installed"
    done
    BUSYBOX=$(command -v busybox || true)
    [ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q static || BUSYBOX=/bin/busybox
    [ -x "$BUSYBOX" ] || cannot_run "no static busybox (busybox-static) to make the steps' image"
    [ "$(id -u)" = 0 ] || cannot_run "rootful podman needs root (uid $(id -u))"

    E=$TMP/engine
    mkdir -p "$E/tmp"
    . "$KILN_SOURCE_DIR/tests/tools/podman_engine.sh"
    podman_engine_conf "$E"
    export CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf
    export CONTAINERS_REGISTRIES_CONF=$E/registries.conf
    mkdir -p "$E/root/bin" "$E/root/tmp"
    cp "$BUSYBOX" "$E/root/bin/busybox"
    local a
    for a in sh echo sleep cat ls test mkdir kill true false env grep; do ln -s busybox "$E/root/bin/$a"; done
    tar -C "$E/root" -cf "$E/root.tar" .
    IMG=localhost/kiln-k8s-busybox:1
    TMPDIR=$E/tmp podman import "$E/root.tar" "$IMG" >"$E/import.log" 2>&1 ||
        { cat "$E/import.log"; cannot_run "podman import failed"; }

    K=$TMP/k8s
    start_fake "$K" --namespaces default,builds --kubelet podman --kubelet-dir "$K/kubelet"
    SERVER=http://127.0.0.1:$PORT
    export KUBECONFIG=$TMP/kubeconfig
    cat >"$KUBECONFIG" <<Y
apiVersion: v1
kind: Config
current-context: fake
contexts:
- name: fake
  context: {cluster: fake, user: u, namespace: builds}
clusters:
- name: fake
  cluster: {server: "$SERVER"}
users:
- name: u
  user: {}
Y
    EXEC="kubernetes:context=fake"
    KUBECTL_BIN=$(bash "$KILN_SOURCE_DIR/scripts/kubectl.sh" 2>"$TMP/kubectl-why") || KUBECTL_BIN=
    KUBECTL=("$KUBECTL_BIN" --context fake -n builds)
}

# The test needs kubectl: a failure when KILN_REQUIRE_KUBECTL (or
# KILN_REQUIRE_SHARED, as .ci/run sets) is 1, else the test is skipped.
k8s_need_kubectl() {
    [ -n "$KUBECTL_BIN" ] && return 0
    if [ "${KILN_REQUIRE_KUBECTL:-${KILN_REQUIRE_SHARED:-0}}" = 1 ]; then
        echo "FAIL - kubectl is required: $(cat "$TMP/kubectl-why")"
        exit 1
    fi
    skip_test "no kubectl could be had: $(cat "$TMP/kubectl-why")"
}

api() { curl -s "$SERVER$1"; }
count() { api "/api/v1/namespaces/builds/$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'; }
log_has() {
    python3 -c 'import json,sys
ls=[json.loads(x) for x in open(sys.argv[1])]
sys.exit(0 if any(eval(sys.argv[2]) for l in ls) else 1)' "$K/requests.jsonl" "$1"
}
no_containers() {
    [ -z "$(TMPDIR=$E/tmp podman ps -a --filter label=kiln-fake-k8s=1 --format '{{.Names}}' 2>/dev/null)" ]
}
