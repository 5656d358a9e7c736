#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Integration tests for the container executor (issue 11): `kiln run
# --executor container` on REAL components: podman's Docker-compatible API
# service (rootful, runc, vfs, private configuration, as test_docker_build.sh)
# and Debian's docker-registry with and without htpasswd credentials. Images
# are made on the spot from busybox-static (FROM scratch) and tagged as the
# names pipelines use (ubuntu, gcr.io/cloud-builders/docker).
#
# If podman or the registry cannot run here, the test FAILS (saying why),
# unless KILN_SKIP_ENGINE_TESTS=1 is set.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/container_fixture.sh"

# ---------------------------------------------------------------------------
echo "# a step sees the image's files, not the host's; /workspace and /builder/home persist; outputs"
new_case basic
echo "from-the-host" >host-file.txt
cat >pipeline.yaml <<'EOF'
steps:
- id: first
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'cat /etc/image-marker; test -e /etc/debian_version && echo HOST-ETC-SEEN; cat host-file.txt; pwd; echo made-by-first > /workspace/made.txt; echo home-data > $$HOME/h; echo to-stderr >&2; echo answer=42 >> $$KILN_OUTPUT']
- id: second
  name: ubuntu
  script: |
    cat /workspace/made.txt /builder/home/h
    echo "home is $HOME"
    test -S /var/run/docker.sock && echo engine-socket-here
- id: third
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'echo first said ${{ steps.first.outputs.answer }}']
EOF
krun --executor "$KX" --sink "jsonl:path=$CASE/log.jsonl"
check "exit 0" test "$RC" = 0
check "the image's file" has_line out.txt "[first] from-the-image"
check "not the host's /etc" lacks_line out.txt "HOST-ETC-SEEN"
check "the workspace is bound" has_line out.txt "[first] from-the-host"
check "the working directory is /workspace" has_line out.txt "[first] /workspace"
check "stderr kept apart" grep -q '"stream":"stderr".*"text":"to-stderr"' log.jsonl
check "stdout kept apart" grep -q '"stream":"stdout".*"text":"from-the-image"' log.jsonl
check "the workspace persists to the next step" has_line out.txt "[second] made-by-first"
check "and so does the home volume" has_line out.txt "[second] home-data"
check "HOME is /builder/home" has_line out.txt "[second] home is /builder/home"
check "the engine's socket is mounted" has_line out.txt "[second] engine-socket-here"
check "\$KILN_OUTPUT works" has_line out.txt "[third] first said 42"
check "the file made in a step is on the host" test "$(cat made.txt)" = made-by-first
check "no 'image is not used'" lacks_line out.txt "is not used"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# 1,000,000 lines from a container arrive complete and in order, streams apart"
new_case million
cat >pipeline.yaml <<'EOF'
steps:
- id: many
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'seq 1 1000000; seq 1 1000 >&2']
EOF
krun --executor "$KX" --quiet --sink "jsonl:path=$CASE/log.jsonl"
check "exit 0" test "$RC" = 0
cat >count.py <<'EOF'
import json, sys
# A line flushed before its newline (a slow moment) comes as "partial":true
# and the rest of it in the next record of its stream: join them.
out, err = [], []
held = {"stdout": "", "stderr": ""}
for l in open(sys.argv[1]):
    j = json.loads(l)
    if j.get("step_id") != "many" or "text" not in j or j.get("severity") == "DEBUG":
        continue
    st = j["stream"]
    if st not in held:
        continue
    if j.get("partial"):
        held[st] += j["text"]
        continue
    (out if st == "stdout" else err).append(held[st] + j["text"])
    held[st] = ""
print(out == [str(i) for i in range(1, 1000001)] and err == [str(i) for i in range(1, 1001)])
EOF
check "every line, in order, on its stream" test "$(python3 count.py log.jsonl)" = True
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# exit codes, allowExitCodes, secrets masked"
new_case codes
printf 'TOKEN=s3cr3t-value-xyz\n' >sec.env
cat >pipeline.yaml <<'EOF'
availableSecrets:
  secretManager:
  - versionName: projects/p/secrets/token/versions/1
    env: TOKEN
steps:
- id: allowed
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'echo token=$$TOKEN; exit 3']
  secretEnv: [TOKEN]
  allowExitCodes: [3]
- id: fails
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'exit 5']
- id: never
  name: ubuntu
  args: ['true']
EOF
krun --executor "$KX" --secrets-file sec.env
check "the build fails" test "$RC" = 1
check "the secret is masked" has_line out.txt "[allowed] token=********"
check "and never printed" lacks_line out.txt "s3cr3t-value-xyz"
check "allowExitCodes: the build went on" test "$(status report.json fails)" = FAILURE
check "exit 5 is the reason" has_line out.txt "step exited with non-zero status: 5"
check "exit code in the report" test "$(field report.json fails exit_code)" = 5
check "the next step did not run" test "$(status report.json never)" = QUEUED
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# a step reaches a server in a sibling step by name; timeout; failure-cancel"
new_case network
cat >pipeline.yaml <<'EOF'
steps:
- id: server
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'echo served-by-sibling > /tmp/index.html; httpd -f -p 8080 -h /tmp']
- id: client
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'for i in $(seq 1 120); do wget -q -O - http://server:8080/index.html && exit 0; sleep 0.5; done; exit 1']
  waitFor: ['-']
- id: slow
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'trap "echo got-term; exit 9" TERM; echo armed; sleep 300 & wait']
  timeout: 15s
  waitFor: [client]
EOF
krun --executor "$KX" --kill-grace 5s
check "the client got the sibling's page" has_line out.txt "[client] served-by-sibling"
check "the client succeeded" test "$(status report.json client)" = SUCCESS
check "timeout: the container got SIGTERM" has_line out.txt "[slow] got-term"
check "timeout status" test "$(status report.json slow)" = TIMEOUT
check "the server was cancelled by the failure" test "$(status report.json server)" = CANCELLED
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# a failure while 10 siblings are being pulled, created, attached or started"
new_case cancel_early
{
    echo "steps:"
    printf -- "- id: bad\n  name: ubuntu\n  args: ['sh', '-c', 'exit 3']\n  waitFor: ['-']\n"
    for i in $(seq 1 10); do printf -- "- name: ubuntu\n  args: ['sleep', '5']\n  waitFor: ['-']\n"; done
} >pipeline.yaml
krun --executor "$KX" --max-parallel 11
check "exit 1 (no crash)" test "$RC" = 1
check "the failure is the reason" has_line out.txt "step exited with non-zero status: 3"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# a step plugin's processes run in the step's image (kedro-train with name:)"
new_case kedro
cp -r "$KILN_SOURCE_DIR/tests/data/kedro_project" kedro_project
R2=$TMP/rootfs-kedro
cp -a "$R" "$R2"
cat >"$R2/bin/kedro" <<'EOF'
#!/bin/sh
echo "kedro $* ran in the image, in $(pwd)"
if [ -r "$KEDRO_LOGGING_CONFIG" ] && grep -q '^version: 1' "$KEDRO_LOGGING_CONFIG"; then
    echo "logging configuration readable in the container"
else
    echo "logging configuration NOT readable in the container: $KEDRO_LOGGING_CONFIG"
fi
EOF
chmod +x "$R2/bin/kedro"
tar -C "$R2" -cf "$TMP/kedro.tar" .
apix POST "/images/create?fromSrc=-&repo=kiln-test/kedro" -H 'Content-Type: application/x-tar' \
    --data-binary @"$TMP/kedro.tar" >/dev/null
cat >pipeline.yaml <<'EOF'
steps:
- id: train
  name: kiln-test/kedro
  uses: kedro-train
  with: {project: ./kedro_project}
EOF
krun --executor "$KX"
check "kedro ran in the image (there is no kedro on the host's PATH)" grep -q "\[train\] kedro run.* ran in the image, in /workspace/kedro_project" out.txt
check "KEDRO_LOGGING_CONFIG is a path that exists in the container" has_line out.txt "[train] logging configuration readable in the container"
check "...and is removed from the workspace after the step" test -z "$(ls -d kiln-kedro-* 2>/dev/null)"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# Ctrl-C: SIGTERM in the container, then everything removed"
new_case interrupt
cat >pipeline.yaml <<'EOF'
steps:
- id: long
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'trap "echo got-term; exit 9" TERM; echo running; sleep 300 & wait']
EOF
"$KILN" run pipeline.yaml --executor "$KX" --report report.json >out.txt 2>&1 &
KP=$!
wait_for 300 grep -q "running" out.txt || true
kill -INT "$KP"
RC=0; wait "$KP" || RC=$?
check "exit 130" test "$RC" = 130
check "SIGTERM reached the step" has_line out.txt "[long] got-term"
check "CANCELLED" test "$(status report.json long)" = CANCELLED
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# retry starts a new container"
new_case retry
cat >pipeline.yaml <<'EOF'
steps:
- id: flaky
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'echo host=$(hostname); if [ -e tried ]; then echo second-try; exit 0; fi; touch tried; exit 4']
  retry: {limit: 2, backoff: 100ms}
EOF
krun --executor "$KX"
check "success on the second attempt" test "$RC" = 0
check "two attempts" has_line out.txt "[flaky] second-try"
check "two containers" test "$(grep -c '\[flaky\] host=' out.txt)" = 2 -a "$(grep '\[flaky\] host=' out.txt | sort -u | wc -l)" = 2
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# volumes: cloud-build-local's cloudbuild_volumes.yaml runs unchanged"
new_case volumes
cp "$KILN_SOURCE_DIR/tests/data/cloudbuild/GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_volumes.yaml" pipeline.yaml
krun --executor "$KX"
check "exit 0" test "$RC" = 0
check "the volume carried the file to step 1" has_line out.txt "[step-1] some stuff"
check "and to step 2 at another path" has_line out.txt "[step-2] some stuff"
check "a step without it does not see it" has_line out.txt "[step-3] 1"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# an image built by one step (docker-build, same engine) runs the next"
new_case built
mkdir -p ctx
cp "$BUSYBOX" ctx/busybox
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY marker /marker\n' >ctx/Dockerfile
echo "built-in-this-build" >ctx/marker
cat >pipeline.yaml <<'EOF'
steps:
- name: gcr.io/cloud-builders/docker
  args: [build, -t, kiln-test/built:1, ctx]
- name: kiln-test/built:1
  entrypoint: /bin/busybox
  args: [cat, /marker]
EOF
DOCKER_HOST=unix://$SOCK krun --executor "$KX"
check "exit 0" test "$RC" = 0
check "the next step ran in the built image" has_line out.txt "built-in-this-build"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# images pulled from a registry, with and without credentials; an image that does not exist"
new_case pull
apix POST "/images/ubuntu/tag?repo=127.0.0.1:$REG/kiln/busy&tag=1" >/dev/null
apix POST "/images/127.0.0.1:$REG/kiln/busy/push?tag=1" -H "X-Registry-Auth: e30=" >/dev/null
apix POST "/images/ubuntu/tag?repo=127.0.0.1:$AREG/kiln/priv&tag=1" >/dev/null
AUTH=$(printf '{"username":"ci","password":"s3cret"}' | base64 -w0 | tr '+/' '-_')
apix POST "/images/127.0.0.1:$AREG/kiln/priv/push?tag=1" -H "X-Registry-Auth: $AUTH" >/dev/null
apix DELETE "/images/127.0.0.1:$REG/kiln/busy:1" >/dev/null
apix DELETE "/images/127.0.0.1:$AREG/kiln/priv:1" >/dev/null
check "fixture: not on the engine any more" test "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://d/v1.41/images/127.0.0.1:$REG/kiln/busy:1/json")" = 404
cat >pipeline.yaml <<EOF
steps:
- name: 127.0.0.1:$REG/kiln/busy:1
  args: [cat, /etc/image-marker]
EOF
krun --executor "$KX"
check "pulled and ran" test "$RC" = 0
check "the image's file" has_line out.txt "from-the-image"
check "progress lines in the step's log" grep -q "pull 127.0.0.1:$REG/kiln/busy:1: " out.txt
cat >pipeline.yaml <<EOF
steps:
- name: 127.0.0.1:$AREG/kiln/priv:1
  args: [cat, /etc/image-marker]
EOF
krun --executor "$KX"
check "no credentials: the step fails" test "$RC" = 1
check "with the engine's message" grep -q "cannot pull image 127.0.0.1:$AREG/kiln/priv:1: .*\(unauthorized\|authentication required\|denied\)" out.txt
krun --executor "$KX,auth=ci:s3cret"
check "auth=: pulled and ran" test "$RC" = 0
check "auth=: the image's file" has_line out.txt "from-the-image"
apix DELETE "/images/127.0.0.1:$AREG/kiln/priv:1" >/dev/null
mkdir -p home/.docker
printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$AREG" "$(printf ci:s3cret | base64 -w0)" >home/.docker/config.json
HOME=$CASE/home krun --executor "$KX"
check "~/.docker/config.json: pulled and ran" test "$RC" = 0
check "~/.docker/config.json: the image's file" has_line out.txt "from-the-image"
cat >pipeline.yaml <<EOF
steps:
- name: 127.0.0.1:$REG/kiln/nope:1
  args: ['true']
EOF
krun --executor "$KX"
check "missing image: the step fails" test "$RC" = 1
check "missing image: the engine's message" grep -q "cannot pull image 127.0.0.1:$REG/kiln/nope:1: .*\(manifest unknown\|not found\)" out.txt
krun --executor "$KX,pull=never"
check "pull=never: says so" has_line out.txt "image 127.0.0.1:$REG/kiln/nope:1 is not on the engine, and pull=never"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# kill -9 of kiln: the next run removes the leftovers of builds no longer running"
new_case kill9
cat >pipeline.yaml <<'EOF'
steps:
- id: long
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'echo running; sleep 300']
EOF
"$KILN" run pipeline.yaml --executor "$KX" >out1.txt 2>&1 &
KP=$!
wait_for 300 grep -q "running" out1.txt || true
kill -9 "$KP"
wait "$KP" 2>/dev/null || true
check "the killed build left its container, volume and network" test "$(leftovers | wc -l)" -ge 3
cat >pipeline.yaml <<'EOF'
steps:
- name: ubuntu
  args: ['true']
EOF
krun --executor "$KX"
check "the next run succeeds" test "$RC" = 0
check "and says it cleaned" has_line out.txt "left by builds no longer running"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# options checked against the executor's schema; an engine that is not there"
new_case options
cat >pipeline.yaml <<'EOF'
steps:
- name: ubuntu
  args: ['true']
EOF
krun --executor container:pull=sometimes
check "bad value: exit 2" test "$RC" = 2
check "bad value: says what it takes" has_line out.txt "option 'pull' of plugin 'container': expected one of 'missing', 'always', 'never', got 'sometimes'"
krun --executor container:bogus=1
check "unknown option: exit 2" test "$RC" = 2
check "unknown option: lists them" has_line out.txt "plugin 'container' has no option 'bogus' (it takes: engine, pull, auth)"
touch ran-marker-absent
cat >pipeline.yaml <<'EOF'
steps:
- name: ubuntu
  entrypoint: sh
  args: ['-c', 'touch /workspace/it-ran']
EOF
RC=0
env -u DOCKER_HOST -u CONTAINER_HOST XDG_RUNTIME_DIR="$TMP/none" "$KILN" run pipeline.yaml \
    --executor "container:engine=unix://$TMP/no-engine.sock" >out.txt 2>&1 || RC=$?
check "no engine: exit 2" test "$RC" = 2
check "no engine: one line" test "$(wc -l <out.txt)" = 1
check "no engine: says what it tried" has_line out.txt "no container engine answers (tried unix://$TMP/no-engine.sock"
check "no engine: nothing ran" test ! -e it-ran
RC=0
KILN_EXECUTOR="container:engine=unix://$TMP/no-engine.sock" "$KILN" run pipeline.yaml >out.txt 2>&1 || RC=$?
check "KILN_EXECUTOR is read" test "$RC" = 2
check "kiln plugins lists the executor" sh -c '"$KILN" plugins | grep -q "^container  *executor"'
"$KILN" plugins container >plug.txt 2>&1 || true
check "kiln plugins container: its options" grep -q "pull" plug.txt

finish
