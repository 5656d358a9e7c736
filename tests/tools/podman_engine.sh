# SPDX-License-Identifier: MIT
# A private, rootful podman for tests and benches (sourced, not run):
# runc, cgroupfs, the vfs storage driver and file events, so that it works in
# a CI container without systemd or overlay, with its state under one
# directory that the caller removes. ../shared/reference/real-components.md
# §1 explains each setting.
#
#   podman_engine_conf DIR [PORT...]
#       writes DIR/containers.conf, DIR/storage.conf, DIR/registries.conf;
#       each PORT is a registry on 127.0.0.1 that podman may use over http.
#       Use them as CONTAINERS_CONF=DIR/containers.conf
#       CONTAINERS_STORAGE_CONF=DIR/storage.conf
#       CONTAINERS_REGISTRIES_CONF=DIR/registries.conf TMPDIR=DIR/tmp.
#   registry_conf DIR PORT [HTPASSWD]
#       writes DIR/config.yml for Debian's docker-registry on 127.0.0.1:PORT
#       (data under DIR/data; with HTPASSWD, basic auth from that file).

podman_engine_conf() {
    local e=$1 port
    shift
    mkdir -p "$e/tmp"
    cat >"$e/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$e/tmp"
CONF
    cat >"$e/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$e/graph"
runroot = "$e/run"
CONF
    echo 'unqualified-search-registries = []' >"$e/registries.conf"
    for port in "$@"; do
        printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port" >>"$e/registries.conf"
    done
}

registry_conf() {
    local d=$1
    mkdir -p "$d/data"
    {
        echo "version: 0.1"
        echo "log: {level: warn}"
        echo "storage: {filesystem: {rootdirectory: $d/data}, delete: {enabled: true}}"
        echo "http: {addr: \"127.0.0.1:$2\"}"
        if [ -n "${3:-}" ]; then echo "auth: {htpasswd: {realm: kiln-test, path: $3}}"; fi
    } >"$d/config.yml"
}
