# SPDX-License-Identifier: MIT
# Sourced by the kubernetes benches (SRC: the source tree; W: their work
# directory, removed on exit with the fake stopped).
#   bench_k8s_engine IMG APPLET...: podman's private configuration in
#       E=$W/engine, and IMG, busybox with those applets, imported there.
#   bench_k8s_fake: the fake API server with its podman kubelet in $W, and
#       KUBECONFIG pointing at it (context fake, namespace builds); FPID is
#       its pid.
FPID=
trap '[ -n "$FPID" ] && kill "$FPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT

bench_k8s_engine() {
    local img=$1 a
    shift
    E=$W/engine
    mkdir -p "$E/tmp" "$E/root/bin"
    . "$SRC/tests/tools/podman_engine.sh"
    podman_engine_conf "$E"
    export CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf
    export CONTAINERS_REGISTRIES_CONF=$E/registries.conf
    cp "$(command -v busybox)" "$E/root/bin/busybox"
    for a in "$@"; do ln -s busybox "$E/root/bin/$a"; done
    tar -C "$E/root" -cf "$E/root.tar" .
    TMPDIR=$E/tmp podman import "$E/root.tar" "$img" >/dev/null
}

bench_k8s_fake() {
    python3 "$SRC/tests/fakes/fake_k8s.py" --port-file "$W/port" --namespaces default,builds \
        --kubelet podman --kubelet-dir "$W/kubelet" >"$W/fake.out" 2>&1 &
    FPID=$!
    for _ in $(seq 600); do [ -s "$W/port" ] && break; sleep 0.1; done
    cat >"$W/kubeconfig" <<Y
apiVersion: v1
kind: Config
current-context: fake
contexts: [{name: fake, context: {cluster: fake, user: u, namespace: builds}}]
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$(cat "$W/port")"}}]
users: [{name: u, user: {}}]
Y
    export KUBECONFIG=$W/kubeconfig
}
