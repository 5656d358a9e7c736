#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The kubernetes executor's logs under kiln-pod-helper (helperImage=):
# steps run as Pods on the fake API server, whose kubelet runs them for real
# with podman (the fixture of test_k8s_executor.sh), the helper put in by an
# init container from an image built here (FROM scratch + the static
# helper). Checked: stdout and stderr apart again, $KILN_OUTPUT in both
# workspace modes, exit codes; a pods/log stream broken again and again, a
# log rotated under a follow, and both together lose or repeat no line (a
# loss the API can no longer serve is said, never silent); SIGTERM reaches
# the command through the helper on Ctrl-C; a helper image that cannot
# be pulled fails the step saying so; a slow sink pauses the stream and
# every line arrives in order.
#
# Needs podman, runc, a static busybox, root (scripts/deps.d/k8s-executor).
# KILN_SKIP_ENGINE_TESTS=1 skips it, as test_docker_build.
source "$(dirname "$0")/lib.sh"
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"

echo "# fixture: podman (the fake kubelet's runtime), the steps' image, the helper's image, fake API servers"
k8s_env_engine
k8s_env_image sh echo sleep cat seq test kill true false
k8s_env_helper_image

# Four API servers, one kubelet behaviour each: plain; pods/log follows
# broken every 30000 bytes; the log file rotated every 60000 bytes; both.
export KUBECONFIG=$TMP/kubeconfig
{
    echo "apiVersion: v1"; echo "kind: Config"; echo "current-context: plain"; echo "contexts:"
} >"$KUBECONFIG"
CLUSTERS=""
declare -A KDIR
fake() {  # fake NAME ARGS...
    start_fake "$TMP/$1" --namespaces default,builds --kubelet podman --kubelet-dir "$TMP/$1/kubelet" "${@:2}"
    KDIR[$1]=$TMP/$1
    printf -- '- name: %s\n  context: {cluster: %s, user: u, namespace: builds}\n' "$1" "$1" >>"$KUBECONFIG"
    CLUSTERS+=$(printf -- '- name: %s\n  cluster: {server: "http://127.0.0.1:%s"}\n' "$1" "$PORT")$'\n'
}
fake plain
fake breaks --log-break-every 30000
fake rotates --log-rotate-bytes 60000
fake both --log-break-every 30000 --log-rotate-bytes 60000
{
    echo "clusters:"; printf '%s' "$CLUSTERS"
    echo "users:"; echo "- name: u"; echo "  user: {}"
} >>"$KUBECONFIG"
X() { echo "kubernetes:context=$1,helperImage=$HIMG${2:+,$2}"; }
pods_left() {
    curl -s "http://127.0.0.1:$(cat "$TMP/$1/port")/api/v1/namespaces/builds/pods" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'
}
# stream_lines JSONL STEP STREAM: the step's lines on that stream, partial
# records joined (as test_container_executor.sh reads them)
cat >"$TMP/lines.py" <<'PY'
import json, sys
held = ""
for l in open(sys.argv[1]):
    j = json.loads(l)
    if j.get("step_id") != sys.argv[2] or j.get("stream") != sys.argv[3] or "text" not in j \
            or j.get("severity") == "DEBUG":
        continue
    if j.get("partial"):
        held += j["text"]
        continue
    print(held + j["text"])
    held = ""
PY
stream_lines() { python3 "$TMP/lines.py" "$@"; }

# ---------------------------------------------------------------------------
echo "# framed: stdout and stderr apart, outputs, exit codes"
mkdir -p basic/ws && cd basic
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: talk
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo out-line-1; echo err-line-1 >&2; printf "tab\there back\\\\slash\n"; echo answer=42 >> "$$KILN_OUTPUT"']
- id: use
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo use-saw-${{ steps.talk.outputs.answer }}; exit 3']
  allowExitCodes: [3]
Y
rc=$(run_kiln out run p.yaml --executor "$(X plain)" --report r.json --sink "jsonl:path=$PWD/log.jsonl" --workspace ws)
check "the build succeeds (exit $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -30 out
check "the Pod got the helper's init container and emptyDir" python3 -c 'import json,sys
ok=any(l["method"]=="POST" and l["path"].endswith("/pods")
       and l["body"]["spec"]["initContainers"][0]["image"]==sys.argv[2]
       and l["body"]["spec"]["containers"][0]["command"][0]=="/kiln/kiln-pod-helper"
       for l in map(json.loads, open(sys.argv[1])))
sys.exit(0 if ok else 1)' "$TMP/plain/requests.jsonl" "$HIMG"
check "stdout is stdout" [ "$(stream_lines log.jsonl talk stdout | head -1)" = out-line-1 ]
check "stderr is stderr again (pods/log merged them)" [ "$(stream_lines log.jsonl talk stderr)" = err-line-1 ]
check "bytes come through the escapes as they were" has_line out "$(printf '[talk] tab\there back\\slash')"
check "\$KILN_OUTPUT (hostpath) becomes the step's output" has_line out "[use] use-saw-42"
check "an exit code comes through exactly (3, allowed)" [ "$(field r.json use exit_code)" = 3 ]
check "no helper record shows in the log" lacks_line out "@kf1"
check "no Pod is left" [ "$(pods_left plain)" = 0 ]
cd "$TMP"

echo "# workspace=pvc: \$KILN_OUTPUT comes back in the log (kiln cannot read the claim)"
mkdir -p pvc/ws && cd pvc
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: a
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo colour=blue >> "$$KILN_OUTPUT"; echo "size=7" >> "$$KILN_OUTPUT"']
- id: b
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo b-saw-${{ steps.a.outputs.colour }}-${{ steps.a.outputs.size }}']
Y
rc=$(run_kiln out run p.yaml --executor "$(X plain workspace=pvc)" --workspace ws)
check "the build succeeds (exit $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -30 out
check "outputs written in the Pod reach the next step" has_line out "[b] b-saw-blue-7"
cd "$TMP"

# ---------------------------------------------------------------------------
# 6000 stdout lines and 600 stderr lines, paced (about 1000 lines a second)
# so that breaks and rotations fall in the middle of the output.
sed "s|IMG|$IMG|" >"$TMP/many.yaml" <<'Y'
steps:
- id: many
  name: IMG
  entrypoint: sh
  args: ['-c', 'i=1; while [ $$i -le 6000 ]; do echo "line-$$i"; if [ $$((i % 10)) = 0 ]; then echo "err-$$i" >&2; fi; if [ $$((i % 100)) = 0 ]; then sleep 0.1; fi; i=$$((i + 1)); done']
Y
expect_out() { seq 1 6000 | sed 's/^/line-/'; }
expect_err() { seq 10 10 6000 | sed 's/^/err-/'; }
# in_order FILE PREFIX: the lines are PREFIX-N with N strictly increasing
# (none repeated, none out of order)
in_order() { python3 -c 'import sys
n=[int(l.split("-")[1]) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if all(a<b for a,b in zip(n,n[1:])) else 1)' "$1"; }
many() {  # many CONTEXT
    mkdir -p "$TMP/$1-run/ws" && cd "$TMP/$1-run"
    RC=$(run_kiln out run "$TMP/many.yaml" --executor "$(X "$1")" --quiet --sink "jsonl:path=$PWD/log.jsonl" --workspace ws)
    stream_lines log.jsonl many stdout >stdout.txt
    stream_lines log.jsonl many stderr >stderr.txt
    grep '^err-' stderr.txt >err-lines.txt || true
}

echo "# a pods/log stream broken every 30000 bytes resumes with no line lost or repeated"
many breaks
check "exit 0" [ "$RC" = 0 ]
breaks=$(python3 -c 'import json,sys; print(sum(1 for x in open(sys.argv[1]) if (l:=json.loads(x))["path"].endswith("/log")))' "$TMP/breaks/requests.jsonl")
check "the stream was read again and again ($breaks pods/log requests)" [ "$breaks" -ge 4 ]
check "every stdout line once, in order" cmp -s stdout.txt <(expect_out)
check "every stderr line once, in order, on stderr" cmp -s err-lines.txt <(expect_err)
cd "$TMP"

echo "# a log rotated under a follow: the follow goes on in the new file"
many rotates
check "exit 0" [ "$RC" = 0 ]
check "the fake rotated the log file" test -n "$(find "$TMP/rotates/kubelet/logs" -name '*.log.1' 2>/dev/null)"
check "every stdout line once, in order" cmp -s stdout.txt <(expect_out)
check "every stderr line once, in order" cmp -s err-lines.txt <(expect_err)
cd "$TMP"

echo "# broken and rotated: nothing repeated or reordered; what the API no longer has is said"
many both
check "exit 0" [ "$RC" = 0 ]
check "stdout: no line repeated or out of order" in_order stdout.txt
check "stderr: no line repeated or out of order" in_order err-lines.txt
if cmp -s stdout.txt <(expect_out) && cmp -s err-lines.txt <(expect_err); then
    pass "every line arrived (no rotation fell between a break and its resume)"
else
    check "lines are missing, and the step's stderr says how many records were lost" \
        grep -q "records of this step's output (records [0-9]* to [0-9]*) were no longer in Pod" stderr.txt
fi
check "no Pod is left on any fake" [ "$(pods_left breaks)$(pods_left rotates)$(pods_left both)" = 000 ]
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# Ctrl-C once the command runs: the helper passes SIGTERM on to it, which ends in the grace period"
mkdir -p term/ws && cd term
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: trap
  name: IMG
  entrypoint: sh
  args: ['-c', 'trap "echo got-sigterm; exit 7" TERM; echo started; while true; do sleep 0.2; done']
  timeout: 300s
Y
"$KILN" run p.yaml --executor "$(X plain)" --report r.json --workspace ws >out 2>&1 &
KPID=$!
# Only once the command has said it runs (a Pod starts in seconds here).
check "the step's command runs" wait_for 120 has_line out "[trap] started"
kill -INT "$KPID"
rc=0
wait "$KPID" || rc=$?
check "kiln fails (exit $rc)" [ "$rc" != 0 ]
check "the step ends CANCELLED" [ "$(status r.json trap)" = CANCELLED ]
check "the command got SIGTERM through the helper (its trap ran)" has_line out "[trap] got-sigterm"
check "no Pod is left" wait_for 60 sh -c "[ \"\$(curl -s http://127.0.0.1:$(cat "$TMP/plain/port")/api/v1/namespaces/builds/pods | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"items\"]))')\" = 0 ]"
cd "$TMP"

echo "# a helper image that cannot be pulled fails the step saying so"
mkdir -p nohelper/ws && cd nohelper
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: s
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo never']
Y
rc=$(run_kiln out run p.yaml --executor "kubernetes:context=plain,helperImage=localhost/kiln-no-such-helper:1" --workspace ws)
check "the build fails (exit $rc)" [ "$rc" = 1 ]
check "the error names the helper image" has_line out "the helper image localhost/kiln-no-such-helper:1 cannot be used"
check "the step did not run" lacks_line out "[s] never"
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# a slow sink: pause() stops reading pods/log, resume() goes on; every line in order"
mkdir -p slow/ws && cd slow
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: flood
  name: IMG
  args: [seq, 1, 200000]
Y
rc=$(run_kiln out run p.yaml --executor "$(X plain)" --plugin-path "$KILN_TEST_PLUGIN_DIR" --quiet \
    --log-dir logs --sink "slow:report=$PWD/slow.txt,delay_us=50" --workspace ws)
check "exit 0 (got $rc)" [ "$rc" = 0 ]
read -r lines ordered while_paused <slow.txt || true
check "the slow sink got every line ($lines of 200000)" [ "$lines" = 200000 ]
check "in order" [ "$ordered" = 1 ]
check "no write reached the paused sink ($while_paused)" [ "$while_paused" = 0 ]
check "the log file has every line" cmp -s logs/flood.log <(seq 1 200000)
stalls=$(grep -c "pods/log stalled" "$TMP/plain/server.out" || true)
check "the fake's follow waited on kiln: the stream was paused ($stalls stalls)" [ "$stalls" -ge 1 ]
cd "$TMP"

check "the kubelets left no container" wait_for 120 no_containers
finish
