# SPDX-License-Identifier: MIT
# The container executor's test fixture (sourced by test_container_*.sh after
# lib.sh): podman's Docker-compatible API service (rootful, runc, vfs, private
# configuration, as test_docker_build.sh), Debian's docker-registry twice
# (REG without credentials, AREG with htpasswd ci:s3cret), the image `ubuntu`
# and `gcr.io/cloud-builders/docker` made from busybox-static (FROM scratch;
# /etc/image-marker says "from-the-image"), and the helpers api, apix,
# leftovers, no_leftovers, new_case, krun. KX is the --executor value.
#
# If podman or the registry cannot run here, the test FAILS (saying why),
# unless KILN_SKIP_ENGINE_TESTS=1 is set.
cannot_run() {
    if [ "${KILN_SKIP_ENGINE_TESTS:-0}" = 1 ]; then skip_test "$* (KILN_SKIP_ENGINE_TESTS=1)"; fi
    echo "FAIL - the real engine cannot run here: $*"
    echo "       (install the packages of scripts/deps.d/executor; or set KILN_SKIP_ENGINE_TESTS=1)"
    exit 1
}
for tool in podman runc docker-registry htpasswd curl python3; do
    command -v "$tool" >/dev/null 2>&1 || cannot_run "$tool is not installed"
done
[ -x /usr/lib/podman/aardvark-dns ] || cannot_run "aardvark-dns is not installed (steps find each other by name through it)"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q static || BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || cannot_run "no static busybox (busybox-static) to put into FROM-scratch images"
[ "$(id -u)" = 0 ] || cannot_run "podman's rootful service needs root (uid $(id -u))"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# the registries and the engine: stopped by lib.sh's cleanup

# ---------------------------------------------------------------------------
echo "# fixture: podman API service, two registries, images from busybox"
E=$TMP/engine
mkdir -p "$E/tmp"
REG=$(free_port); AREG=$(free_port)
. "$KILN_SOURCE_DIR/tests/tools/podman_engine.sh"
podman_engine_conf "$E" "$REG" "$AREG"
start_registry() {  # start_registry NAME PORT [htpasswd-file]
    registry_conf "$TMP/$1" "$2" "${3:-}"
    docker-registry serve "$TMP/$1/config.yml" >"$TMP/$1/log" 2>&1 &
    FAKE_PIDS+=($!)
}
htpasswd -Bbn ci s3cret >"$TMP/htpasswd" 2>/dev/null
start_registry reg "$REG"
start_registry areg "$AREG" "$TMP/htpasswd"
env CONTAINERS_CONF="$E/containers.conf" CONTAINERS_STORAGE_CONF="$E/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$E/registries.conf" TMPDIR="$E/tmp" \
    podman system service --time=0 "unix://$E/podman.sock" >"$E/podman.log" 2>&1 &
FAKE_PIDS+=($!)
SOCK=$E/podman.sock
up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$@" 2>/dev/null)" != 000 ]; }
for i in $(seq 1 1200); do  # up to 60 s: only catches services that never answer
    up --unix-socket "$SOCK" http://d/_ping && up "http://127.0.0.1:$REG/v2/" && up "http://127.0.0.1:$AREG/v2/" && break
    [ "$i" = 1200 ] && cannot_run "podman service or docker-registry did not answer within 60s"
    sleep 0.05
done
curl -s -o /dev/null --max-time 120 --unix-socket "$SOCK" http://d/v1.41/version ||
    cannot_run "podman service did not answer /version within 120s"
api() { curl -s --unix-socket "$SOCK" "http://d/v1.41$1"; }
apix() { local m=$1 p=$2; shift 2; curl -s --unix-socket "$SOCK" -X "$m" "$@" "http://d/v1.41$p"; }
# A FROM-scratch image: busybox and its applets, a marker file, and `bash`
# as a script running sh (the corpus's steps call bash).
R=$TMP/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
for t in sh cat echo ls sleep env pwd printf chmod rm test true false seq head tr mkdir touch hostname \
    wget httpd grep yes dd wc nslookup; do ln -s busybox "$R/bin/$t"; done
printf '#!/bin/sh\nexec sh "$@"\n' >"$R/bin/bash"
chmod +x "$R/bin/bash"
echo "from-the-image" >"$R/etc/image-marker"
# an interpreter that only the image has (busybox's awk, by its name)
mkdir -p "$R/opt/only-in-image"
ln -s /bin/busybox "$R/opt/only-in-image/awk"
tar -C "$R" -cf "$TMP/rootfs.tar" .
import() {  # import REPO TAG
    apix POST "/images/create?fromSrc=-&repo=$1&tag=$2" -H 'Content-Type: application/x-tar' \
        --data-binary @"$TMP/rootfs.tar" >/dev/null
}
import ubuntu latest
import gcr.io/cloud-builders/docker latest
check "fixture: image ubuntu" test "$(api /images/ubuntu/json | python3 -c 'import json,sys; print(bool(json.load(sys.stdin).get("Id")))')" = True
KX="container:engine=unix://$SOCK"
# Every kiln this test starts records its pid (the wrapper execs kiln, so the
# pid is kiln's own), for the network check of leftovers below.
printf '#!/bin/sh\necho $$ >>"%s/kiln-pids"\nexec "%s" "$@"\n' "$TMP" "$KILN" >"$TMP/kiln-rec"
chmod +x "$TMP/kiln-rec"
KILN=$TMP/kiln-rec
: >"$TMP/kiln-pids"
# leftovers: what kiln made that is still on the engine (none expected)
# Networks, unlike containers and volumes, are not private to this test's
# podman: every podman on the machine shares /etc/containers/networks (so
# that their bridges and subnets do not collide). A network of another
# test's build (its kiln alive, or dead and not one this test started, as
# when ctest runs two engine tests at once) is not this test's leftover.
DEAD_OWNER='
import json, socket, sys
ours = set(open("'"$TMP"'/kiln-pids").read().split())
def dead(owner):
    host, pid, start = owner.rsplit(":", 2)
    if host != socket.gethostname() or pid not in ours:
        return False
    try:
        stat = open("/proc/%s/stat" % pid).read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].split()[19] != start
'
leftovers() {
    {
        api '/containers/json?all=1&filters=%7B%22label%22%3A%5B%22kiln.owner%22%5D%7D' | python3 -c 'import json,sys; [print("container", c["Names"]) for c in json.load(sys.stdin)]'
        api '/volumes?filters=%7B%22label%22%3A%5B%22kiln.owner%22%5D%7D' | python3 -c 'import json,sys; [print("volume", v["Name"]) for v in json.load(sys.stdin)["Volumes"] or []]'
        # listed, owner found dead, and still there when listed again: a
        # kiln that removes its network and exits between the list and the
        # check of its owner is not a leftover
        local n
        for n in $(api '/networks?filters=%7B%22label%22%3A%5B%22kiln.owner%22%5D%7D' |
            python3 -c "$DEAD_OWNER"'[print(n["Name"]) for n in json.load(sys.stdin) if dead(n["Labels"]["kiln.owner"])]'); do
            [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://d/v1.41/networks/$n")" = 404 ] ||
                echo "network $n"
        done
    } 2>&1
}
no_leftovers() {
    local l
    l=$(leftovers)
    [ -z "$l" ] || { echo "  left on the engine: $l"; return 1; }
}
new_case() { CASE=$TMP/cases/$1; mkdir -p "$CASE"; cd "$CASE"; }
krun() {  # krun [kiln args...]: pipeline.yaml -> RC, out.txt, report.json
    RC=0
    timeout 600 "$KILN" run pipeline.yaml --report report.json "$@" >out.txt 2>&1 || RC=$?
    # A failing run's own words, for whoever reads a red CI log.
    if [ "$RC" != 0 ] && [ "${KRUN_QUIET:-0}" != 1 ]; then
        echo "  (kiln exited $RC; the end of its output:)"
        tail -15 out.txt | sed 's/^/  | /'
    fi
}

