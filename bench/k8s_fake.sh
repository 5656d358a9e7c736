# SPDX-License-Identifier: MIT
# Sourced by the kubernetes benches: bench_k8s_fake starts the fake API
# server with its podman kubelet in $W (SRC: the source tree) and points
# KUBECONFIG at it (context fake, namespace builds); FPID is its pid.
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
