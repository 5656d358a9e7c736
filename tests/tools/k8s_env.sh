# SPDX-License-Identifier: MIT
# The fake cluster of the kubernetes executor's tests (sourced after
# tests/integration/lib.sh, not run): a private rootful podman (the fake
# kubelet's runtime, tests/tools/podman_engine.sh), a busybox image, the fake
# API server with its kubelet, a kubeconfig and helpers. A test that needs
# something slightly different calls the steps of k8s_env_start itself, and
# may define its own cannot_run after sourcing this file.
#
#   k8s_env_start
#       k8s_env_engine, k8s_env_image, k8s_env_fake and k8s_env_kubectl.
#   k8s_env_engine [TOOL...]
#       checks podman runc python3 curl and the TOOLs, a static busybox and
#       root; sets E (podman's private dir) and podman's CONTAINERS_* files.
#   k8s_env_image [APPLET...]
#       imports IMG (default localhost/kiln-k8s-busybox:1): busybox in an
#       empty root ($E/root: a test may put files there first) with a link
#       for each APPLET (default: sh echo sleep cat ls test mkdir kill true
#       false env grep).
#   k8s_env_helper_image
#       imports HIMG (localhost/kiln-pod-helper:test) as `make
#       pod-helper-image` makes it, from HELPER (the built kiln-pod-helper).
#   k8s_env_python_image
#       imports PYIMG (default localhost/kiln-k8s-python:1): this machine's
#       Debian python3 (K8S_PYTHON, default /usr/bin/python3), its standard
#       library without the test suite, IDLE, Tk, ensurepip, lib2to3,
#       distutils and config-*, the libraries ldd names for it and its
#       lib-dynload modules, busybox's sh; PATH=/usr/bin:/bin.
#   k8s_env_root DIR [APPLET...], k8s_env_libs DIR FILE...,
#   k8s_env_import DIR IMAGE [OPTION...]
#       the pieces of the images above: busybox in an empty root, the
#       libraries ldd names, `podman import` of a tar of DIR.
#   k8s_env_git_image NAME
#       imports NAME: this machine's git (and git-remote-http, for http://
#       remotes, and ssh when there is one), the libraries ldd names, and
#       busybox's sh, echo, cat, test, printf and awk in an empty root with
#       root in /etc/passwd: a fill image for fill=git (no registry is
#       reachable here, so alpine/git is not used).
#   k8s_env_sshd PORT SRV
#       a real OpenSSH sshd on 127.0.0.1:PORT in a container of the private
#       podman (its image: sshd, git, busybox's sh), serving the directory
#       SRV at /srv to root with the key $E/ssh/client_key; its host key's
#       known_hosts line in $E/ssh/known_hosts. sshd is /usr/sbin/sshd, else
#       Debian's openssh-server unpacked privately (apt-get download, as
#       scripts/kubectl.sh does) into ${XDG_CACHE_HOME:-$HOME/.cache}/kiln/
#       sshd. Returns 1 (saying why) when none can be had.
#   k8s_env_fake [FAKE-ARG...]
#       starts the fake in K ($TMP/k8s: requests.jsonl, kubelet/) with the
#       extra FAKE-ARGs; sets SERVER, KUBECONFIG (context "fake", namespace
#       "builds"; with K8S_OTHER_CONTEXT=1 the current context is "other",
#       a cluster nowhere) and EXEC=kubernetes:context=fake.
#   k8s_env_kubectl
#       sets KUBECTL (an array: kubectl --context fake -n builds) or leaves
#       KUBECTL_BIN empty when no kubectl can be had (k8s_need_kubectl
#       then fails or skips).
#   k8s_env_imaged PIPELINE IMAGE
#       PIPELINE with `name: IMAGE` on every step, on stdout
#   api PATH          GET on the fake
#   count PLURAL      how many objects of PLURAL the namespace builds holds
#   log_has EXPR      some request of the fake's log satisfies EXPR (Python over l)
#   no_containers     the kubelet left no container

FAKE=$KILN_SOURCE_DIR/tests/fakes/fake_k8s.py
HELPER=${KILN_BUILD_DIR:-$KILN_SOURCE_DIR/build}/tools/kiln-pod-helper/kiln-pod-helper

cannot_run() {
    [ "${KILN_SKIP_ENGINE_TESTS:-0}" = 1 ] && skip_test "$*"
    echo "FAIL - cannot run: $*"
    echo "       (install: podman runc busybox-static kubectl; or set KILN_SKIP_ENGINE_TESTS=1)"
    exit 1
}

k8s_env_start() {
    k8s_env_engine
    k8s_env_image
    k8s_env_fake
    k8s_env_kubectl
}

k8s_env_engine() {
    local tool
    for tool in podman runc python3 curl "$@"; do
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
}

k8s_env_image() {
    local applets=("$@")
    [ ${#applets[@]} -gt 0 ] || applets=(sh echo sleep cat ls test mkdir kill true false env grep)
    k8s_env_root "$E/root" "${applets[@]}"
    IMG=${IMG:-localhost/kiln-k8s-busybox:1}
    k8s_env_import "$E/root" "$IMG"
}

k8s_env_helper_image() {
    [ -x "$HELPER" ] || cannot_run "no $HELPER (a static libc is needed to build it: libc6-dev)"
    # FROM scratch, the static binary at /kiln-pod-helper (imported: no
    # build tool needed).
    mkdir -p "$E/helper"
    cp "$HELPER" "$E/helper/kiln-pod-helper"
    HIMG=localhost/kiln-pod-helper:test
    k8s_env_import "$E/helper" "$HIMG"
}

k8s_env_python_image() {
    # Debian's python3 (not whatever python3 PATH finds first: a pyenv or
    # venv build keeps its library elsewhere); its stdlib without what a
    # build's unittest never loads (the test suite, IDLE, Tk, pip's wheels,
    # the static libpython of config-*).
    local py=${K8S_PYTHON:-/usr/bin/python3} stdlib d=$E/python x
    [ -x "$py" ] || cannot_run "no $py to make the python image (python3)"
    py=$(readlink -f "$py")
    stdlib=$("$py" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))') ||
        cannot_run "$py cannot say where its library is"
    k8s_env_root "$d" sh
    mkdir -p "$d/usr/bin" "$d$(dirname "$stdlib")"
    cp "$py" "$d/usr/bin/" && ln -s "$(basename "$py")" "$d/usr/bin/python3"
    cp -a "$stdlib" "$d$stdlib"
    for x in test idlelib tkinter turtledemo ensurepip lib2to3 pydoc_data distutils site-packages dist-packages \
        'config-*'; do
        rm -rf "${d:?}$stdlib/"$x
    done
    k8s_env_libs "$d" "$py" "$d$stdlib"/lib-dynload/*.so
    PYIMG=${PYIMG:-localhost/kiln-k8s-python:1}
    k8s_env_import "$d" "$PYIMG" --change 'ENV PATH=/usr/bin:/bin'
}

# k8s_env_root DIR [APPLET...]: an empty root in DIR with /tmp and busybox
# at /bin/busybox, a link to it per APPLET.
k8s_env_root() {
    local d=$1 a
    shift
    mkdir -p "$d/bin" "$d/tmp"
    cp "$BUSYBOX" "$d/bin/busybox"
    for a in "$@"; do ln -sf busybox "$d/bin/$a"; done
}

# k8s_env_libs DIR FILE...: the shared libraries ldd names for the FILEs
# (the loader too), copied to their own paths under DIR; one ldd cannot
# find is left out (a module that needs it fails to import, as it would).
k8s_env_libs() {
    local d=$1 lib
    shift
    for lib in $(ldd "$@" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}' | sort -u); do
        [ -e "$d$lib" ] && continue
        mkdir -p "$d$(dirname "$lib")" && cp -L "$lib" "$d$lib"
    done
}

# k8s_env_import DIR IMAGE [podman import OPTION...]: DIR as the image IMAGE
# in the private storage (a tar of it, `podman import`: no registry, no
# build tool).
k8s_env_import() {
    local d=$1 img=$2
    shift 2
    tar -C "$d" -cf "$d.tar" .
    TMPDIR=$E/tmp podman import "$@" "$d.tar" "$img" >"$d.import.log" 2>&1 ||
        { cat "$d.import.log"; cannot_run "podman import of $img failed"; }
}

k8s_env_git_image() {
    local r=$E/gitroot f bins=()
    rm -rf "$r"
    k8s_env_root "$r" sh echo cat test awk printf
    mkdir -p "$r/etc" "$r/usr/lib/git-core" && echo 'root:x:0:0:root:/tmp:/bin/sh' >"$r/etc/passwd"
    cp "$(command -v git)" "$r/bin/git"
    if command -v ssh >/dev/null; then cp "$(command -v ssh)" "$r/bin/ssh"; fi
    # git runs its http transport from its exec path, as this machine's git does
    cp "$(git --exec-path)/git-remote-http" "$r/usr/lib/git-core/" 2>/dev/null || true
    for f in "$r/bin/git" "$r/usr/lib/git-core/git-remote-http" "$r/bin/ssh"; do
        [ -e "$f" ] && bins+=("$f")
    done
    k8s_env_libs "$r" "${bins[@]}"
    if [ "$(git --exec-path)" != /usr/lib/git-core ]; then
        mkdir -p "$r$(git --exec-path)" && cp "$r/usr/lib/git-core/git-remote-http" "$r$(git --exec-path)/"
    fi
    k8s_env_import "$r" "$1" --change 'ENV PATH=/bin'
}

k8s_env_sshd() {
    local port=$1 srv=$2 sshd=/usr/sbin/sshd libdir="" r=$E/sshroot f lib
    if [ ! -x "$sshd" ]; then
        local cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/kiln/sshd
        if [ ! -x "$cache/x/usr/sbin/sshd" ]; then
            mkdir -p "$cache"
            (cd "$cache" && apt-get download openssh-server libwrap0 >"$cache/download.log" 2>&1 &&
                for d in ./*.deb; do dpkg-deb -x "$d" x; done) ||
                { echo "  no sshd: apt-get download openssh-server failed: $(tail -1 "$cache/download.log")"; return 1; }
        fi
        sshd=$cache/x/usr/sbin/sshd
        libdir=$cache/x/usr/lib/x86_64-linux-gnu
    fi
    rm -rf "$r" && mkdir -p "$r/bin" "$r/usr/sbin" "$r/etc/ssh" "$r/run/sshd" "$r/root/.ssh" "$r/tmp" "$r/srv" "$E/ssh"
    cp "$BUSYBOX" "$r/bin/busybox"
    for f in sh cat echo test; do ln -s busybox "$r/bin/$f"; done
    cp "$sshd" "$r/usr/sbin/sshd"
    cp "$(command -v git)" "$r/bin/git"
    ln -s git "$r/bin/git-upload-pack"
    local dest
    for f in "$r/usr/sbin/sshd" "$r/bin/git"; do
        for lib in $(LD_LIBRARY_PATH=$libdir ldd "$f" | grep -o '/[^ ]*'); do
            dest=$lib
            # the unpacked package's libraries go where the loader looks
            [ -n "$libdir" ] && case $lib in "$libdir"/*) dest=/usr/lib/x86_64-linux-gnu/${lib##*/} ;; esac
            mkdir -p "$r$(dirname "$dest")" && cp -L "$lib" "$r$dest"
        done
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
    rm -f "$E/ssh/client_key" "$E/ssh/client_key.pub"
    ssh-keygen -q -t ed25519 -N '' -f "$r/etc/ssh/host_key" && ssh-keygen -q -t ed25519 -N '' -f "$E/ssh/client_key" ||
        { echo "  no sshd: ssh-keygen failed"; return 1; }
    cp "$E/ssh/client_key.pub" "$r/root/.ssh/authorized_keys"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$r/etc/ssh/host_key.pub")" >"$E/ssh/known_hosts"
    printf '%s\n' "HostKey /etc/ssh/host_key" "PermitRootLogin prohibit-password" "PasswordAuthentication no" \
        "UsePAM no" "StrictModes no" "AuthorizedKeysFile /root/.ssh/authorized_keys" "PidFile none" \
        >"$r/etc/ssh/sshd_config"
    tar -C "$r" -cf "$E/sshd.tar" .
    TMPDIR=$E/tmp podman import --change 'ENV PATH=/bin:/usr/sbin' "$E/sshd.tar" localhost/kiln-k8s-sshd:1 \
        >"$E/sshdimport.log" 2>&1 || { echo "  no sshd: podman import failed: $(tail -1 "$E/sshdimport.log")"; return 1; }
    TMPDIR=$E/tmp podman run -d --name kiln-k8s-sshd --label kiln-fake-k8s-sshd=1 --network host -v "$srv:/srv" \
        localhost/kiln-k8s-sshd:1 /usr/sbin/sshd -D -e -p "$port" -f /etc/ssh/sshd_config >/dev/null 2>"$E/sshdrun.log" ||
        { echo "  no sshd: podman run failed: $(tail -1 "$E/sshdrun.log")"; return 1; }
}

k8s_env_fake() {
    K=$TMP/k8s
    start_fake "$K" --namespaces default,builds --kubelet podman --kubelet-dir "$K/kubelet" "$@"
    SERVER=http://127.0.0.1:$PORT
    export KUBECONFIG=$TMP/kubeconfig
    local current=fake other_ctx="" other_cluster=""
    if [ "${K8S_OTHER_CONTEXT:-0}" = 1 ]; then
        current=other
        other_ctx=$'- name: other\n  context: {cluster: nowhere, user: u}\n'
        other_cluster=$'- name: nowhere\n  cluster: {server: "http://127.0.0.1:1"}\n'
    fi
    cat >"$KUBECONFIG" <<Y
apiVersion: v1
kind: Config
current-context: $current
contexts:
$other_ctx- name: fake
  context: {cluster: fake, user: u, namespace: builds}
clusters:
$other_cluster- name: fake
  cluster: {server: "$SERVER"}
users:
- name: u
  user: {}
Y
    EXEC="kubernetes:context=fake"
}

k8s_env_kubectl() {
    # kubectl on PATH, else Debian's unpacked privately (scripts/kubectl.sh)
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

# k8s_env_imaged PIPELINE IMAGE: PIPELINE with `name: IMAGE` on every step
# (a step written `- id: X` at the start of a line), on stdout: a pipeline
# of the suite whose steps name no image (they would run on this machine
# under any executor) as Pods.
k8s_env_imaged() { sed "s|^- id: \(.*\)|- id: \1\n  name: $2|" "$1"; }

api() { curl -s "$SERVER$1"; }
count() { api "/api/v1/namespaces/builds/$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'; }
# kubectl_watches KIND: how many watches of KIND kubectl has opened on the
# fake so far (its request log); watch_opened KIND N: more than N. A test
# that starts `kubectl get KIND -w` waits for it before kiln makes anything,
# so that no short-lived object comes and goes before the watch.
kubectl_watches() {
    python3 -c 'import json,sys
n = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["query"].get("watch") in ("true", "1") and r["path"].endswith("/" + sys.argv[2]) \
            and (r.get("user_agent") or "").startswith("kubectl"):
        n += 1
print(n)' "$K/requests.jsonl" "$1"
}
watch_opened() { [ "$(kubectl_watches "$1")" -gt "$2" ]; }
# nothing_left: no Pod, Secret, ConfigMap or claim of the builds namespace
# (what kiln makes for a build) is on the API server; says what is left.
nothing_left() {
    local what n
    for what in pods secrets configmaps persistentvolumeclaims; do
        n=$(count "$what")
        [ "$n" = 0 ] || { echo "  $n $what left"; return 1; }
    done
}
log_has() {
    python3 -c 'import json,sys
ls=[json.loads(x) for x in open(sys.argv[1])]
sys.exit(0 if any(eval(sys.argv[2]) for l in ls) else 1)' "$K/requests.jsonl" "$1"
}
no_containers() {
    [ -z "$(TMPDIR=$E/tmp podman ps -a --filter label=kiln-fake-k8s=1 --format '{{.Names}}' 2>/dev/null)" ]
}
