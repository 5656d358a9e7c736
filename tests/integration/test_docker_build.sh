#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Integration tests for the docker-build step plugin (issue 5), on REAL
# components: podman's Docker-compatible API service (rootful, runc, vfs,
# private configuration; see ../shared/reference/real-components.md §1) and
# Debian's docker-registry (distribution v2), all on 127.0.0.1 with free
# ports, in a temporary directory, stopped by their PIDs from a trap.
#
# If podman or the registry cannot run here, the test FAILS (saying why),
# unless KILN_SKIP_ENGINE_TESTS=1 is set.
#
# Environment (set by ctest): KILN, KILN_PLUGIN_PATH, KILN_SOURCE_DIR.
set -euo pipefail

: "${KILN:?}" "${KILN_PLUGIN_PATH:?}" "${KILN_SOURCE_DIR:?}"
export KILN_PLUGIN_PATH
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-docker-test.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${KILN_TEST_KEEP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP" 2>/dev/null || true; fi
}
trap cleanup EXIT
FAILS=0
PASSES=0
T0=$(date +%s)

pass() { PASSES=$((PASSES + 1)); echo "ok   - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
has_line() { grep -qF -- "$2" "$1"; }
lacks_line() { ! grep -qF -- "$2" "$1"; }
# step0 FILE KEY: a field of the report's first step, dotted ("" when absent)
step0() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["steps"][0]; v=s
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$1" "$2"; }

cannot_run() {
    if [ "${KILN_SKIP_ENGINE_TESTS:-0}" = 1 ]; then
        echo "SKIP - $* (KILN_SKIP_ENGINE_TESTS=1)"
        exit 0
    fi
    echo "FAIL - the real engine cannot run here: $*"
    echo "       (install: podman runc busybox-static docker-registry apache2-utils; or set KILN_SKIP_ENGINE_TESTS=1)"
    exit 1
}

for tool in podman runc docker-registry htpasswd curl python3; do
    command -v "$tool" >/dev/null 2>&1 || cannot_run "$tool is not installed"
done
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q static || BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || cannot_run "no static busybox (busybox-static) to put into FROM-scratch images"
[ "$(id -u)" = 0 ] || cannot_run "podman's rootful service needs root (uid $(id -u))"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------------------
echo "# fixture: podman API service and three registries"
E=$TMP/engine
mkdir -p "$E/tmp"
REG=$(free_port); AREG=$(free_port); HREG=$(free_port)   # open, htpasswd, not marked insecure
. "$KILN_SOURCE_DIR/tests/tools/podman_engine.sh"
podman_engine_conf "$E" "$REG" "$AREG"
start_registry() {  # start_registry NAME PORT [htpasswd-file]
    registry_conf "$TMP/$1" "$2" "${3:-}"
    docker-registry serve "$TMP/$1/config.yml" >"$TMP/$1/log" 2>&1 &
    PIDS+=($!)
}
htpasswd -Bbn ci s3cret >"$TMP/htpasswd" 2>/dev/null
start_registry reg "$REG"
start_registry areg "$AREG" "$TMP/htpasswd"
start_registry hreg "$HREG"
env CONTAINERS_CONF="$E/containers.conf" CONTAINERS_STORAGE_CONF="$E/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$E/registries.conf" TMPDIR="$E/tmp" \
    podman --log-level=info system service --time=0 "unix://$E/podman.sock" >"$E/podman.log" 2>&1 &
PIDS+=($!)
SOCK=$E/podman.sock
up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$@" 2>/dev/null)" != 000 ]; }
for i in $(seq 1 1200); do  # up to 60 s: only catches services that never answer
    if up --unix-socket "$SOCK" http://d/_ping && up "http://127.0.0.1:$REG/v2/" &&
        up "http://127.0.0.1:$AREG/v2/" && up "http://127.0.0.1:$HREG/v2/"; then
        break
    fi
    [ "$i" = 1200 ] && { tail -5 "$E/podman.log" "$TMP"/*/log; cannot_run "podman service or docker-registry did not answer within 60s"; }
    sleep 0.05
done
# Podman's first /version (it sets up its runtime then) can take long on a
# loaded machine, and docker-build gives its engine probe 15 s: ask once here,
# with a limit that only catches a hang, so that kiln's probes find it warm.
curl -s -o /dev/null --max-time 120 --unix-socket "$SOCK" http://d/v1.41/version ||
    cannot_run "podman service did not answer /version within 120s"
ping=$(curl -s --unix-socket "$SOCK" http://d/_ping)
[ "$ping" = OK ] || cannot_run "podman service answered '$ping' to /_ping"
echo "  engine unix://$SOCK, registries 127.0.0.1:$REG (open), :$AREG (htpasswd), :$HREG (not insecure)"
export DOCKER_HOST=unix://$SOCK
api() { curl -s --unix-socket "$SOCK" "http://d/v1.41$1"; }
jq_() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
manifest_digest() {  # manifest_digest REGISTRY REPO TAG [curl args]
    local r=$1 repo=$2 tag=$3; shift 3
    curl -s -I "$@" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$r/v2/$repo/manifests/$tag" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}

# new_case NAME: a fresh directory with a context holding busybox
new_case() {
    CASE=$TMP/cases/$1
    mkdir -p "$CASE/ctx"
    cp "$BUSYBOX" "$CASE/ctx/busybox"
    cd "$CASE"
}
# kiln_run [kiln args...]: run pipeline.yaml, leave RC, OUT, LOG, REPORT
kiln_run() {
    RC=0
    timeout 600 "$KILN" run pipeline.yaml --log-dir logs --report report.json "$@" >out.txt 2>&1 || RC=$?
    OUT=$CASE/out.txt
    LOG=$CASE/logs/img.log
    REPORT=$CASE/report.json
    if [ ! -f "$REPORT" ]; then
        echo "  (kiln exit $RC, no report; output follows)"
        sed 's/^/  | /' out.txt | tail -20
        touch "$REPORT" "$LOG"
    fi
}

# ---------------------------------------------------------------------------
echo "# good build from scratch with a RUN step; progress arrives while the build runs"
new_case good
cat >ctx/Dockerfile <<'EOF2'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo early-progress-line; /bin/busybox sleep 2; echo late-progress-line; /bin/busybox mkdir /out"]
ARG GREETING=none
RUN ["/bin/busybox", "sh", "-c", "echo greeting=$GREETING > /out/greeting"]
EOF2
cat >pipeline.yaml <<EOF2
steps:
- id: img
  uses: docker-build
  with:
    context: ctx
    tags: [kiln-test/good:1, kiln-test/good:extra]
    build_args: {GREETING: hello}
    labels: {org.kiln.case: good}
EOF2
RC=0
timeout 600 "$KILN" run pipeline.yaml --log-dir logs --report report.json >out.txt 2>&1 &
KPID=$!
seen_early="" ; while kill -0 $KPID 2>/dev/null; do
    if [ -z "$seen_early" ] && grep -qx early-progress-line logs/img.log 2>/dev/null; then
        seen_early=$(date +%s%N); grep -qx late-progress-line logs/img.log && early_before_late=0 || early_before_late=1
    fi
    sleep 0.05
done
wait $KPID || RC=$?
done_at=$(date +%s%N)
[ "$RC" = 0 ] || { echo "  (kiln exit $RC; output follows)"; sed 's/^/  | /' out.txt | tail -20; }
OUT=$CASE/out.txt; LOG=$CASE/logs/img.log; REPORT=$CASE/report.json
check "good build exits 0" test "$RC" = 0
check "good build: step SUCCESS" test "$(step0 "$REPORT" status)" = SUCCESS
check "engine progress (STEP lines) in the step log" grep -q '^STEP 3/[0-9]*: RUN' "$LOG"
check "RUN output in the step log" grep -qx late-progress-line "$LOG"
check "progress reached the log while the build ran (before the RUN finished)" \
    test -n "$seen_early" -a "${early_before_late:-0}" = 1
image_id=$(step0 "$REPORT" outputs.image_id)
check "image_id output is a sha256 id" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$image_id"
check "tags output" test "$(step0 "$REPORT" outputs.tags)" = "kiln-test/good:1,kiln-test/good:extra"
inspect=$(api /images/kiln-test/good:1/json)
check "the engine has the image under the tag, with the same id" test "$(jq_ 'j["Id"]' <<<"$inspect")" = "$image_id"
check "labels reached the engine" test "$(jq_ 'j["Config"]["Labels"].get("org.kiln.case")' <<<"$inspect")" = good
check "second tag too" test "$(api /images/kiln-test/good:extra/json | jq_ 'j["Id"]')" = "$image_id"

# ---------------------------------------------------------------------------
echo "# a RUN that fails: the engine's message (inside HTTP 200) fails the step"
new_case failrun
cat >ctx/Dockerfile <<'EOF2'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo about-to-fail; exit 3"]
EOF2
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, tags: [kiln-test/fail:1]}\n' >pipeline.yaml
kiln_run
check "failing RUN exits 1" test "$RC" = 1
check "failing RUN: step FAILURE" test "$(step0 "$REPORT" status)" = FAILURE
reason=$(step0 "$REPORT" reason)
check "reason carries the engine's message (exit status 3)" grep -q "^build failed: .*exit status 3" <<<"$reason"
check "RUN output before the failure is in the log" has_line "$LOG" "about-to-fail"
check "no image_id output for a failed build" test -z "$(step0 "$REPORT" outputs.image_id)"
echo "  reason: $reason"

# ---------------------------------------------------------------------------
echo "# no engine: one line naming the address, before any work"
new_case noengine
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >ctx/Dockerfile
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, host: "unix://%s/nope.sock", tags: [kiln-test/x:1]}\n' "$CASE" >pipeline.yaml
kiln_run
check "missing engine exits 1" test "$RC" = 1
check "missing engine: the reason names the socket" \
    grep -q "^no Docker engine at unix://$CASE/nope.sock (with: host): " <<<"$(step0 "$REPORT" reason)"
check "missing engine: one console line for the step says so" test "$(grep -c '^\[img\] FAILURE.*no Docker engine at' "$OUT")" = 1
check "missing engine: no context was sent" lacks_line "$LOG" "sent the build context"
dead=$(free_port)
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx}\n' >pipeline.yaml
DOCKER_HOST=tcp://127.0.0.1:$dead kiln_run
check "DOCKER_HOST=tcp://... is used and named" \
    grep -q "^no Docker engine at tcp://127.0.0.1:$dead (DOCKER_HOST): " <<<"$(step0 "$REPORT" reason)"
echo "  reason: $(step0 "$REPORT" reason)"

# ---------------------------------------------------------------------------
echo "# .dockerignore is honoured (checked inside the image by a RUN)"
new_case ignore
mkdir -p ctx/logs ctx/sub/deep ctx/docs
echo secret >ctx/secret.txt
echo big >ctx/logs/big.log
echo keep >ctx/logs/keep.txt
echo go >ctx/sub/keep.go
echo tmp >ctx/sub/deep/x.tmp
echo md >ctx/docs/readme.md
cat >ctx/.dockerignore <<'EOF2'
# comment line
secret.txt
/logs
!logs/keep.txt
**/*.tmp
docs
Dockerfile
EOF2
cat >ctx/Dockerfile <<'EOF2'
FROM scratch
COPY . /ctx/
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "cd /ctx && /bin/busybox find . -type f | /bin/busybox sort && test ! -e secret.txt && test ! -e logs/big.log && test -e logs/keep.txt && test -e sub/keep.go && test ! -e sub/deep/x.tmp && test ! -e docs && test -e .dockerignore && echo ignore-checks-passed"]
EOF2
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, tags: [kiln-test/ignore:1]}\n' >pipeline.yaml
kiln_run
check ".dockerignore build exits 0 (ignored files absent, exceptions present)" test "$RC" = 0
check ".dockerignore checks ran in the image" has_line "$LOG" "ignore-checks-passed"
check "the log counts what .dockerignore left out" grep -q "left out by .dockerignore" "$LOG"
# and a COPY of an ignored file fails with the engine's message
printf 'FROM scratch\nCOPY secret.txt /secret.txt\n' >ctx/Dockerfile
kiln_run
check "COPY of an ignored file fails" test "$RC" = 1
check "the engine's message names the missing file" grep -q "secret.txt" <<<"$(step0 "$REPORT" reason)"
echo "  reason: $(step0 "$REPORT" reason)"

# ---------------------------------------------------------------------------
echo "# Cloud Build's form: name gcr.io/cloud-builders/docker, args [build ...] then [push TAG]"
new_case cbform
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >ctx/Dockerfile
cat >pipeline.yaml <<EOF2
steps:
- id: img
  name: gcr.io/cloud-builders/docker
  args: [build, -t, "127.0.0.1:$REG/kiln/cb:\$SHORT_SHA", -t, "127.0.0.1:$REG/kiln/cb:images", --label, "case=cbform", --build-arg, "V=1", ctx]
- id: push
  name: gcr.io/cloud-builders/docker
  args: [push, "127.0.0.1:$REG/kiln/cb:\$SHORT_SHA"]
images: ["127.0.0.1:$REG/kiln/cb:images"]
EOF2
kiln_run --substitutions SHORT_SHA=abc1234
check "cloudbuild form: exits 0" test "$RC" = 0
check "cloudbuild form: build ran through docker-build" test "$(step0 "$REPORT" uses)" = docker-build
check "cloudbuild form: the image is labelled from --label" \
    grep -q '"case":"cbform"' <<<"$(curl -s --unix-socket "$SOCK" "http://d/v1.41/images/127.0.0.1:$REG/kiln/cb:abc1234/json")"
cb_digest=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["steps"][1]["outputs"].get("digest",""))' "$REPORT")
check "cloudbuild form: push's digest is the registry's" \
    test -n "$cb_digest" -a "$cb_digest" = "$(manifest_digest "127.0.0.1:$REG" kiln/cb abc1234)"
check "images: pushed after the steps, as a step of its own" \
    test "$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); s=j["steps"][2]; print(s["key"], s["status"])' "$REPORT")" = "images[0] SUCCESS"
check "images: the registry has it" test -n "$(manifest_digest "127.0.0.1:$REG" kiln/cb images)"

cat >pipeline.yaml <<EOF2
steps:
- id: img
  name: gcr.io/cloud-builders/docker
  args: [build, --network, host, -t, x/y:1, ctx]
EOF2
kiln_run
check "cloudbuild form: an unsupported docker flag is refused before running" test "$RC" = 2
check "cloudbuild form: the flag is named" grep -q "docker build --network is not supported by docker-build" out.txt

# ---------------------------------------------------------------------------
echo "# push to an open registry; the digest is the registry's"
new_case push
printf 'FROM scratch\nCOPY busybox /bin/busybox\nLABEL case=push\n' >ctx/Dockerfile
cat >pipeline.yaml <<EOF2
steps:
- id: img
  uses: docker-build
  with: {context: ctx, tags: ["127.0.0.1:$REG/kiln/app:1", "127.0.0.1:$REG/kiln/app:stable"], push: true}
EOF2
kiln_run
check "push exits 0" test "$RC" = 0
digest=$(step0 "$REPORT" outputs.digest)
reg_digest=$(manifest_digest "127.0.0.1:$REG" kiln/app 1)
check "digest output is a sha256 digest" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$digest"
check "digest equals the registry's Docker-Content-Digest" test -n "$reg_digest" -a "$digest" = "$reg_digest"
check "second tag pushed too" test "$(manifest_digest "127.0.0.1:$REG" kiln/app stable)" = "$reg_digest"
check "digests output lists both tags" test "$(step0 "$REPORT" outputs.digests)" = \
    "127.0.0.1:$REG/kiln/app:1@$digest,127.0.0.1:$REG/kiln/app:stable@$digest"
check "image output pins the digest" test "$(step0 "$REPORT" outputs.image)" = "127.0.0.1:$REG/kiln/app@$digest"
echo "  digest $digest (registry: $reg_digest)"

# ---------------------------------------------------------------------------
echo "# push with htpasswd credentials: good, bad, none"
new_case auth
printf 'FROM scratch\nCOPY busybox /bin/busybox\nLABEL case=auth\n' >ctx/Dockerfile
cat >pipeline.yaml <<EOF2
steps:
- id: img
  uses: docker-build
  with: {context: ctx, tags: ["127.0.0.1:$AREG/kiln/private:1"], push: true, auth_env: REGISTRY_AUTH}
EOF2
REGISTRY_AUTH='{"username":"ci","password":"s3cret"}' kiln_run
check "push with good credentials exits 0" test "$RC" = 0
digest=$(step0 "$REPORT" outputs.digest)
check "digest equals the private registry's" test -n "$digest" -a \
    "$digest" = "$(manifest_digest "127.0.0.1:$AREG" kiln/private 1 -u ci:s3cret)"
check "the password is not in the log" lacks_line "$LOG" s3cret
check "the password is not in the report" lacks_line "$REPORT" s3cret
REGISTRY_AUTH=ci:wrong-password kiln_run
reason=$(step0 "$REPORT" reason)
check "bad credentials exit 1" test "$RC" = 1
check "bad credentials: one clear line" \
    grep -q "^push of 127.0.0.1:$AREG/kiln/private:1 refused by registry 127.0.0.1:$AREG: the credentials from auth_env REGISTRY_AUTH were rejected" <<<"$reason"
check "bad password not in the log" lacks_line "$LOG" wrong-password
echo "  reason: $reason"
sed -i 's/, auth_env: REGISTRY_AUTH//' pipeline.yaml
kiln_run
reason=$(step0 "$REPORT" reason)
check "no credentials: exit 1 and says credentials are needed" \
    grep -q "refused by registry 127.0.0.1:$AREG: it needs credentials" <<<"$reason"
echo "  reason: $reason"
# registry_auth map (with a substitution) instead of the environment
cat >pipeline.yaml <<EOF2
steps:
- id: img
  uses: docker-build
  with:
    context: ctx
    tags: ["127.0.0.1:$AREG/kiln/private:2"]
    push: true
    registry_auth: {username: ci, password: "\${_REG_PASSWORD}"}
EOF2
kiln_run --substitutions _REG_PASSWORD=s3cret
check "registry_auth with a substitution pushes" test "$RC" = 0 -a -n "$(step0 "$REPORT" outputs.digest)"

# ---------------------------------------------------------------------------
echo "# push failures explained: plain-HTTP registry, unknown registry"
new_case pushfail
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >ctx/Dockerfile
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, tags: ["127.0.0.1:%s/kiln/app:1"], push: true}\n' "$HREG" >pipeline.yaml
kiln_run
reason=$(step0 "$REPORT" reason)
check "HTTP instead of HTTPS: exit 1, explained" \
    grep -q "^registry 127.0.0.1:$HREG answers plain HTTP but the engine speaks HTTPS" <<<"$reason"
echo "  reason: $reason"
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, tags: ["no-such-registry.invalid/kiln/app:1"], push: true}\n' >pipeline.yaml
kiln_run
reason=$(step0 "$REPORT" reason)
check "unknown registry: exit 1, explained" grep -q "^cannot reach registry no-such-registry.invalid" <<<"$reason"
echo "  reason: $reason"

# ---------------------------------------------------------------------------
echo "# dry run: the build runs, the push is recorded, not sent"
new_case dry
printf 'FROM scratch\nCOPY busybox /bin/busybox\nLABEL case=dry\n' >ctx/Dockerfile
cat >pipeline.yaml <<EOF2
steps:
- id: img
  uses: docker-build
  with: {context: ctx, tags: ["127.0.0.1:$AREG/kiln/dry:1"], push: true, auth_env: REGISTRY_AUTH}
EOF2
REGISTRY_AUTH=ci:s3cret kiln_run --dry-run
check "dry run exits 0" test "$RC" = 0
check "dry run: the build ran (image_id)" grep -qE '^sha256:' <<<"$(step0 "$REPORT" outputs.image_id)"
check "dry run: the push was not sent" test -z "$(manifest_digest "127.0.0.1:$AREG" kiln/dry 1 -u ci:s3cret)"
plan=$(step0 "$REPORT" plan)
check "dry run: the plan holds the push request" \
    grep -q "\"url\": *\"http://docker/v1.41/images/127.0.0.1:$AREG/kiln/dry/push?tag=1\"" <<<"$plan"
check "dry run: the plan holds no credentials" lacks_line "$REPORT" s3cret
check "dry run: the log says the push was skipped" has_line "$LOG" "dry run: push of 127.0.0.1:$AREG/kiln/dry:1 skipped"
DOCKER_HOST=unix://$CASE/none.sock REGISTRY_AUTH=ci:s3cret kiln_run --dry-run
check "dry run without an engine: exit 0, build skipped with a note" \
    test "$RC" = 0 && has_line "$LOG" "dry run: no Docker engine answered at unix://$CASE/none.sock"
check "dry run without an engine: the push is still in the plan" grep -q "docker-push" <<<"$(step0 "$REPORT" plan)"
check "dry run without an engine: the build is in the plan, with its URL" \
    grep -q "\"url\": *\"http://docker/v1.41/build?rm=1&forcerm=1&t=127.0.0.1%3A$AREG%2Fkiln%2Fdry%3A1&dockerfile=Dockerfile" <<<"$(step0 "$REPORT" plan)"
check "dry run without an engine: the log says the build was recorded, not run" \
    has_line "$LOG" "dry run: the build of 127.0.0.1:$AREG/kiln/dry:1 is recorded in the plan, not run"

# ---------------------------------------------------------------------------
echo "# timeout and cancel drop the connection; the engine cancels the build"
# Podman 4.3 cancels the build when the client goes away ("Client disconnect
# reported for build" in its log) but lets a RUN already running finish; the
# image is then never committed. Docker kills the RUN as well.
new_case timeout
cat >ctx/Dockerfile <<'EOF2'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo sleeping; exec /bin/busybox sleep 60"]
RUN ["/bin/busybox", "sh", "-c", "echo second-run-step"]
EOF2
printf 'steps:\n- id: img\n  uses: docker-build\n  timeout: 45s\n  with: {context: ctx, tags: [kiln-test/slow:1], no_cache: true}\n' >pipeline.yaml
disconnects() { grep -c "Client disconnect reported for build" "$E/podman.log" || true; }
before=$(disconnects)
kiln_run
check "timeout: exit 1" test "$RC" = 1
check "timeout: at the timeout, not after the RUN (the next RUN never ran)" lacks_line "$LOG" second-run-step
check "timeout: step TIMEOUT" test "$(step0 "$REPORT" status)" = TIMEOUT
check "timeout: the RUN had started" has_line "$LOG" sleeping
wait_disconnect() {
    for i in $(seq 1 600); do [ "$(disconnects)" -gt "$1" ] && return 0; sleep 0.1; done  # 60 s: hangs only
    return 1
}
check "timeout: the engine saw the client go and cancelled the build" wait_disconnect "$before"
not_built() {  # the tag never appears, also after the RUN would have ended
    sleep 30  # after the 45 s step timeout (the engine may need most of it to reach the RUN), the 60 s RUN would be over
    [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://d/v1.41/images/$1/json")" = 404 ]
}
check "timeout: the image was never committed" not_built kiln-test/slow:1
# cancel: SIGTERM to kiln while the RUN sleeps
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, tags: [kiln-test/slow:2], no_cache: true}\n' >pipeline.yaml
rm -rf logs report.json
before=$(disconnects)
timeout 600 "$KILN" run pipeline.yaml --log-dir logs --report report.json >out.txt 2>&1 &
KPID=$!
# Wait for the RUN to be running (slow when the machine is busy with other tests).
for i in $(seq 1 600); do grep -qx sleeping logs/img.log 2>/dev/null && break; sleep 0.1; done
check "cancel: the RUN was running before the signal" grep -qx sleeping logs/img.log
kill -TERM $KPID
RC=0; wait $KPID || RC=$?
check "cancel: step CANCELLED" test "$(step0 report.json status)" = CANCELLED
check "cancel: kiln ended without waiting for the RUN (the next RUN never ran)" lacks_line logs/img.log second-run-step
check "cancel: the engine saw the client go and cancelled the build" wait_disconnect "$before"
check "cancel: the image was never committed" not_built kiln-test/slow:2

# ---------------------------------------------------------------------------
echo "# options checked before anything runs"
new_case validate
printf 'FROM scratch\n' >ctx/Dockerfile
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, push: true, tags: ["Bad/Name:1"], host: "ftp://x"}\n' >pipeline.yaml
RC=0; "$KILN" validate pipeline.yaml >out.txt 2>&1 || RC=$?
check "validate rejects bad options" test "$RC" != 0
check "validate: upper-case repository" has_line out.txt "repository names must be lower case"
check "validate: bad host scheme" has_line out.txt "unsupported engine address"

echo "# $PASSES passed, $FAILS failed in $(($(date +%s) - T0))s"
[ "$FAILS" = 0 ]
