#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The container executor (issue 11), continued on the same real components
# as test_container_executor.sh (container_fixture.sh: podman's API service,
# Debian's docker-registry with and without htpasswd): a plugin process's
# input file reaches its stdin in the container; Docker credential helpers
# (credsStore, credHelpers) give the pull its credentials, and a missing or
# failing helper fails it naming the helper; a script with a shebang runs by
# it inside the image; a dry run under the container executor runs the steps
# that do not deploy in their containers and records the deploy.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
: "${KILN_TEST_PLUGIN_DIR:?}"

. "$(dirname "$0")/container_fixture.sh"

# ---------------------------------------------------------------------------
echo "# a process's input file (kiln_spawn_opts.stdin_path) reaches its stdin in the container"
new_case stdin
python3 -c 'import sys; sys.stdout.write("".join("line %06d of the input\n" % i for i in range(20000)))' >input.txt
size=$(stat -c %s input.txt)
cat >pipeline.yaml <<'EOF'
steps:
- id: counts
  name: ubuntu
  uses: test-stdin
  with: {input: input.txt, script: 'wc -c; cat /etc/image-marker'}
- id: last
  name: ubuntu
  uses: test-stdin
  with: {input: input.txt, script: 'tail_line=""; while read -r l; do tail_line=$l; done; echo "last: $tail_line"'}
- id: ignores
  name: ubuntu
  uses: test-stdin
  with: {input: input.txt, script: 'echo not reading its input'}
- id: empty
  name: ubuntu
  uses: test-stdin
  with: {input: empty.txt, script: 'echo "got $(wc -c) bytes"'}
EOF
: >empty.txt
krun --executor "$KX" --plugin-path "$KILN_TEST_PLUGIN_DIR"
check "exit 0" test "$RC" = 0
check "every byte arrived (wc -c in the image)" has_line out.txt "[counts] $size"
check "in the image" has_line out.txt "[counts] from-the-image"
check "to the end, and then end of file" has_line out.txt "[last] last: line 019999 of the input"
check "a process that does not read its input ends" has_line out.txt "[ignores] not reading its input"
check "an empty input is an immediate end of file" has_line out.txt "[empty] got 0 bytes"
check "nothing left on the engine" no_leftovers
cat >pipeline.yaml <<'EOF'
steps:
- id: missing
  name: ubuntu
  uses: test-stdin
  with: {input: no-such-input.txt, script: 'wc -c'}
EOF
krun --executor "$KX" --plugin-path "$KILN_TEST_PLUGIN_DIR"
check "a missing input file: the step fails" test "$RC" = 1
check "...saying which file" grep -q "\[missing\].*cannot run the process with input .*no-such-input.txt" out.txt
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# Docker credential helpers: credsStore and credHelpers"
new_case creds
apix POST "/images/ubuntu/tag?repo=127.0.0.1:$AREG/kiln/helped&tag=1" >/dev/null
AUTH=$(printf '{"username":"ci","password":"s3cret"}' | base64 -w0 | tr '+/' '-_')
apix POST "/images/127.0.0.1:$AREG/kiln/helped/push?tag=1" -H "X-Registry-Auth: $AUTH" >/dev/null
apix DELETE "/images/127.0.0.1:$AREG/kiln/helped:1" >/dev/null
check "fixture: not on the engine" test "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://d/v1.41/images/127.0.0.1:$AREG/kiln/helped:1/json")" = 404
mkdir -p bin home/.docker
# A helper as docker-credential-NAME get implements it: the registry on
# stdin, {"ServerURL","Username","Secret"} out; every call logged.
cat >bin/docker-credential-kilntest <<EOF
#!/bin/sh
[ "\$1" = get ] || { echo "unexpected action \$1"; exit 1; }
read -r server
echo "\$server" >>"$CASE/helper.log"
if [ "\$server" = "127.0.0.1:$AREG" ]; then
    printf '{"ServerURL":"%s","Username":"ci","Secret":"s3cret"}\n' "\$server"
else
    echo "credentials not found in native keychain"
    exit 1
fi
EOF
printf '#!/bin/sh\necho "the keychain is locked"\nexit 3\n' >bin/docker-credential-broken
chmod +x bin/docker-credential-kilntest bin/docker-credential-broken
cat >pipeline.yaml <<EOF
steps:
- id: a
  name: 127.0.0.1:$AREG/kiln/helped:1
  args: [cat, /etc/image-marker]
- id: b
  name: 127.0.0.1:$AREG/kiln/helped:1
  args: [cat, /etc/image-marker]
EOF
echo '{"credsStore": "kilntest"}' >home/.docker/config.json
PATH=$CASE/bin:$PATH HOME=$CASE/home krun --executor "$KX,pull=always"
check "credsStore: pulled and ran" test "$RC" = 0
check "credsStore: the image's file" has_line out.txt "[b] from-the-image"
check "the helper was asked for the registry" test "$(head -1 helper.log 2>/dev/null)" = "127.0.0.1:$AREG"
check "once for the build (two pulls, pull=always)" test "$(wc -l <helper.log)" = 1
apix DELETE "/images/127.0.0.1:$AREG/kiln/helped:1" >/dev/null
rm -f helper.log
printf '{"credHelpers": {"127.0.0.1:%s": "kilntest"}, "credsStore": "broken"}\n' "$AREG" >home/.docker/config.json
PATH=$CASE/bin:$PATH HOME=$CASE/home krun --executor "$KX"
check "credHelpers: the registry's helper, before credsStore" test "$RC" = 0
check "credHelpers: the image's file" has_line out.txt "[a] from-the-image"
check "credHelpers: the helper was asked" test "$(cat helper.log 2>/dev/null)" = "127.0.0.1:$AREG"
apix DELETE "/images/127.0.0.1:$AREG/kiln/helped:1" >/dev/null
echo '{"credsStore": "broken"}' >home/.docker/config.json
PATH=$CASE/bin:$PATH HOME=$CASE/home krun --executor "$KX"
check "a failing helper: the step fails" test "$RC" = 1
check "...naming the helper, with what it said" grep -q "cannot pull image 127.0.0.1:$AREG/kiln/helped:1: credential helper docker-credential-broken failed (exit status 3): the keychain is locked" out.txt
echo '{"credsStore": "nosuchhelper"}' >home/.docker/config.json
PATH=$CASE/bin:$PATH HOME=$CASE/home krun --executor "$KX"
check "a missing helper: the step fails" test "$RC" = 1
check "...naming the helper" grep -q "cannot pull image 127.0.0.1:$AREG/kiln/helped:1: credential helper docker-credential-nosuchhelper is not on PATH" out.txt
apix POST "/images/ubuntu/tag?repo=127.0.0.1:$REG/kiln/anon&tag=1" >/dev/null
apix POST "/images/127.0.0.1:$REG/kiln/anon/push?tag=1" -H "X-Registry-Auth: e30=" >/dev/null
apix DELETE "/images/127.0.0.1:$REG/kiln/anon:1" >/dev/null
cat >pipeline.yaml <<EOF
steps:
- id: anon
  name: 127.0.0.1:$REG/kiln/anon:1
  args: [cat, /etc/image-marker]
EOF
echo '{"credsStore": "kilntest"}' >home/.docker/config.json
rm -f helper.log
PATH=$CASE/bin:$PATH HOME=$CASE/home krun --executor "$KX"
check "a helper with nothing stored for the registry: pulled without credentials" test "$RC" = 0
check "...the image's file" has_line out.txt "[anon] from-the-image"
check "...the helper was asked" test "$(cat helper.log 2>/dev/null)" = "127.0.0.1:$REG"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# a script with a shebang runs by it, inside the image"
new_case shebang
test -e /opt/only-in-image/awk && echo "  (note: the host has /opt/only-in-image/awk too)"
cat >pipeline.yaml <<'EOF'
steps:
- id: awk
  name: ubuntu
  script: |
    #!/opt/only-in-image/awk -f
    BEGIN { print "awk in the image says " 6 * 7 }
- id: busybox
  name: ubuntu
  script: |
    #!/bin/busybox sh
    echo "run by busybox sh; marker: $(cat /etc/image-marker)"
- id: plain
  name: ubuntu
  script: |
    echo "no shebang: sh, in /workspace: $(pwd)"
EOF
krun --executor "$KX"
check "exit 0" test "$RC" = 0
check "an interpreter only the image has" has_line out.txt "[awk] awk in the image says 42"
check "#!/bin/busybox sh" has_line out.txt "[busybox] run by busybox sh; marker: from-the-image"
check "no shebang: sh" has_line out.txt "[plain] no shebang: sh, in /workspace: /workspace"
check "nothing left on the engine" no_leftovers

# ---------------------------------------------------------------------------
echo "# --dry-run under --executor container: the deploy recorded, the rest run in their containers"
new_case dryrun
cat >pipeline.yaml <<'EOF'
steps:
- id: test
  name: ubuntu
  entrypoint: sh
  args: ['-c', 'echo "tested in $(cat /etc/image-marker)"; echo ran >/workspace/test-ran']
- id: deploy
  uses: cloudrun-deploy
  with:
    service: purchase-predict-api
    image: gcr.io/local/purchase-predict-api:dry
    region: europe-west1
    endpoint: 'http://127.0.0.1:9/'
EOF
krun --executor "$KX" --dry-run --plan-dir plans
check "exit 0" test "$RC" = 0
check "the step that does not deploy ran in its container (a file only in the image)" has_line out.txt "[test] tested in from-the-image"
check "...and wrote to the workspace" test "$(cat test-ran 2>/dev/null)" = ran
check "the deploy is recorded in the plan, not sent" python3 -c '
import json,glob
e=[json.loads(l) for f in glob.glob("plans/plan-*.jsonl") for l in open(f)]
assert any(x.get("plugin")=="cloudrun-deploy" for x in e), e'
check "nothing left on the engine" no_leftovers

finish
