#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `kiln run --executor kubernetes`: steps run as Pods on the fake API server
# (tests/fakes/fake_k8s.py) whose kubelet runs each Pod's container for
# real with podman (rootful, runc, vfs: the fixture of test_docker_build.sh),
# so exit codes, output and timing are real. Checked here: a small DAG runs
# as Pods in order with its logs and exit codes; a failing step; a timeout
# deletes its Pod; OOMKilled (simulated by the fake: a memory limit and
# SIGKILL) and an image that cannot be pulled fail saying so; a Pod deleted
# by someone else fails its step; the real kubectl sees the Pods, their logs
# and their end; nothing is left after a run, and what a kill -9'd kiln
# left is removed by the next run.
#
# Needs podman, runc, a static busybox, root and kubectl (scripts/deps.d/
# k8s-executor). KILN_SKIP_ENGINE_TESTS=1 skips it, as test_docker_build.
source "$(dirname "$0")/lib.sh"
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"

echo "# fixture: podman (as the fake kubelet's runtime), an image, the fake API server"
k8s_env_engine
# The steps' image: busybox in an empty root, imported (no build needed).
k8s_env_image sh echo sleep cat ls test mkdir kill true false
# the current context is another one: the executor's context= is what counts
K8S_OTHER_CONTEXT=1 k8s_env_fake
pods_left() { count pods; }
no_pods() { [ "$(pods_left)" = 0 ]; }

# ---------------------------------------------------------------------------
echo "# a DAG of steps as Pods"
mkdir -p dag/ws && cd dag
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: make
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo made-by-pod > /workspace/made.txt; echo out-line-1; echo err-line-1 >&2; echo "home=$$HOME dir=$$(pwd) greet=$$GREET"']
  env: ['GREET=hello-pod']
- id: left
  name: IMG
  entrypoint: sh
  args: ['-c', 'sleep 1; echo left-saw-$$(cat /workspace/made.txt); echo left > /builder/home/left']
  waitFor: [make]
- id: right
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo right-saw-$$(cat made.txt)']
  dir: .
  waitFor: [make]
- id: join
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo join-saw-$$(cat /builder/home/left); echo answer=42 >> "$$KILN_OUTPUT"']
  waitFor: [left, right]
Y
rc=$(run_kiln out run p.yaml --executor "$EXEC" --report r.json --log-dir logs --workspace ws)
check "the DAG succeeds under the kubernetes executor (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/  /' out | tail -30
check "the Pod wrote into the workspace" has_line ws/made.txt made-by-pod
check "stdout reaches the step's log" has_line logs/make.log out-line-1
check "stderr reaches the step's log (merged by pods/log)" has_line logs/make.log err-line-1
check "env, HOME=/builder/home and workingDir /workspace" has_line logs/make.log "home=/builder/home dir=/workspace greet=hello-pod"
check "a later step sees the first one's file" has_line logs/left.log left-saw-made-by-pod
check "dir: . runs in /workspace" has_line logs/right.log right-saw-made-by-pod
check "/builder/home is shared by the build's Pods" has_line logs/join.log join-saw-left
check "KILN_OUTPUT written in a Pod becomes the step's output" [ "$(jget r.json '[s for s in j["steps"] if s["key"]=="join"][0]["outputs"]["answer"]')" = 42 ]
check "one Pod was created per step (4 POSTs)" [ "$(python3 -c 'import json,sys; print(sum(1 for x in open(sys.argv[1]) if (l:=json.loads(x))["method"]=="POST" and l["path"].endswith("/pods")))' "$K/requests.jsonl")" = 4 ]
check "Pods carry restartPolicy Never, the build, step and owner labels" log_has \
    'l["method"]=="POST" and l["path"].endswith("/pods") and l["body"]["spec"]["restartPolicy"]=="Never" and set(l["body"]["metadata"]["labels"]) >= {"kiln.dev/build","kiln.dev/step","kiln.dev/owner"}'
check "completion came from a watch on the build's Pods" log_has 'l["query"].get("watch")=="true" and "kiln.dev/build=" in l["query"].get("labelSelector","")'
check "logs came from pods/log?follow=true" log_has 'l["path"].endswith("/log") and l["query"].get("follow")=="true"'
# DAG order, from the Pods' creation order in the request log
order=$(python3 -c 'import json,sys
for x in open(sys.argv[1]):
    l=json.loads(x)
    if l["method"]=="POST" and l["path"].endswith("/pods"): print(l["body"]["metadata"]["labels"]["kiln.dev/step"])' "$K/requests.jsonl" | tr '\n' ' ')
check "make first, join last (order: $order)" python3 -c 'import sys; o=sys.argv[1].split(); sys.exit(0 if o[0]=="make" and o[-1]=="join" else 1)' "$order"
check "no Pod is left after the build" [ "$(pods_left)" = 0 ]
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# failures: exit code, OOMKilled, image pull, timeout"
mkdir -p fails/ws && cd fails
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: three
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo before-exit; exit 3']
  allowFailure: true
- id: oom
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo eating; sleep 60 & kill -9 $$!; wait $$!; exit $$?']
  allowFailure: true
  waitFor: ['-']
- id: nopull
  name: localhost/kiln-no-such-image:1
  entrypoint: sh
  args: ['-c', 'true']
  allowFailure: true
  waitFor: ['-']
- id: slow
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo slow-started; sleep 120']
  timeout: 3s
  waitFor: [three, oom, nopull]
Y
rc=$(run_kiln out run p.yaml --executor "$EXEC,memory=64Mi" --report r.json --log-dir logs --workspace ws)
check "the build fails (exit 1)" [ "$rc" = 1 ]
check "exit 3 is the step's exit code" [ "$(field r.json three exit_code)" = 3 ]
check "its output arrived" has_line logs/three.log before-exit
check "OOMKilled: exit code 137" [ "$(field r.json oom exit_code)" = 137 ]
check "OOMKilled: the step's log says so" has_line out "[oom] error: Pod kiln-"
check "OOMKilled: ... the container was OOMKilled" grep -q "oom.*was OOMKilled (over its memory limit)" out
check "an image that cannot be pulled fails its step" [ "$(status r.json nopull)" = FAILURE ]
check "... saying so (ErrImagePull and podman's reason)" grep -q "nopull.*localhost/kiln-no-such-image:1 cannot be used: ErrImagePull" out
check "the step with timeout: 3s ends TIMEOUT" [ "$(status r.json slow)" = TIMEOUT ]
check "its Pod was deleted with a grace period" log_has 'l["method"]=="DELETE" and "slow" in l["path"] and l["query"].get("gracePeriodSeconds") not in (None, "0")'
check "no Pod is left after the failed build" wait_for 60 no_pods
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# kubectl sees the Pods; a Pod deleted by someone else fails its step"
k8s_env_kubectl
if [ -z "$KUBECTL_BIN" ]; then
    [ "${KILN_REQUIRE_KUBECTL:-${KILN_REQUIRE_SHARED:-0}}" = 1 ] && { echo "FAIL - kubectl is required: $(cat "$TMP/kubectl-why")"; exit 1; }
    echo "skip - no kubectl could be had: $(cat "$TMP/kubectl-why")"
else
mkdir -p victim/ws && cd victim
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: victim
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo victim-started; i=0; while [ $$i -lt 600 ]; do echo tick-$$i; i=$$((i+1)); sleep 0.2; done']
Y
"$KILN" run p.yaml --executor "$EXEC" --report r.json --log-dir logs --workspace ws >out 2>&1 &
KPID=$!
has_pod() { [ -n "$("${KUBECTL[@]}" get pods -l kiln.dev/step=victim -o name 2>/dev/null)" ]; }
# kubectl wait -l fails at once while nothing matches: wait for the Pod first
check "kubectl get pods finds the step's Pod by its labels" wait_for 60 has_pod
check "kubectl wait --for=condition=Ready sees the step's Pod become ready" \
    "${KUBECTL[@]}" wait --for=condition=Ready pod -l kiln.dev/step=victim --timeout=60s
POD=$("${KUBECTL[@]}" get pods -l kiln.dev/step=victim -o name)
check "kubectl get pods lists it by its labels ($POD)" [ -n "$POD" ]
"${KUBECTL[@]}" logs -f "$POD" >kubectl-logs.txt 2>&1 &
LPID=$!
"${KUBECTL[@]}" get pods -w -l kiln.dev/step=victim --output-watch-events >kubectl-watch.txt 2>&1 &
WPID=$!
check "kubectl logs -f follows the Pod's output" wait_for 60 has_line kubectl-logs.txt tick-3
check "kubectl delete pod (someone else) succeeds" "${KUBECTL[@]}" delete "$POD" --grace-period=1 --timeout=60s
rc=0; wait "$KPID" || rc=$?
check "the build fails (exit 1)" [ "$rc" = 1 ]
check "the step fails" [ "$(status r.json victim)" = FAILURE ]
check "... saying its Pod was deleted by someone else" grep -q "victim.*was deleted by someone else" out
check "its output up to then arrived" has_line logs/victim.log tick-3
wait "$LPID" || true
check "kubectl logs -f ended with the container" has_line kubectl-logs.txt victim-started
check "kubectl get pods -w saw it MODIFIED and DELETED" sh -c "grep -q MODIFIED kubectl-watch.txt && grep -q DELETED kubectl-watch.txt"
kill "$WPID" 2>/dev/null || true; wait "$WPID" 2>/dev/null || true
cd "$TMP"
fi

# ---------------------------------------------------------------------------
echo "# workspace=pvc: a claim per build, shared by its Pods, removed at the end"
mkdir -p pvc/ws && cd pvc
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: write
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo from-claim > /workspace/c.txt; echo h > /builder/home/h']
- id: read
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo read-$$(cat /workspace/c.txt)-$$(cat /builder/home/h)']
Y
rc=$(run_kiln out run p.yaml --executor "$EXEC,workspace=pvc,storage=2Gi" --log-dir logs --workspace ws)
check "the build succeeds on a claim (exit 0)" [ "$rc" = 0 ]
check "the second Pod reads what the first wrote on the claim" has_line logs/read.log read-from-claim-h
check "the claim was asked for: ReadWriteMany, 2Gi, labelled with the build" log_has \
    'l["method"]=="POST" and l["path"].endswith("/persistentvolumeclaims") and l["body"]["spec"]["accessModes"]==["ReadWriteMany"] and l["body"]["spec"]["resources"]["requests"]["storage"]=="2Gi" and "kiln.dev/build" in l["body"]["metadata"]["labels"]'
check "the Pods mount it with subPaths workspace and home" log_has \
    'l["method"]=="POST" and l["path"].endswith("/pods") and {m.get("subPath") for m in l["body"]["spec"]["containers"][0]["volumeMounts"]} >= {"workspace","home"}'
check "the claim is deleted at the end" [ "$(api /api/v1/namespaces/builds/persistentvolumeclaims | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')" = 0 ]
check "kiln's own workspace directory was not used" [ ! -e ws/c.txt ]
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# Ctrl-C: the running Pods are deleted with the grace period, nothing is left"
mkdir -p sigint/ws && cd sigint
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: a
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo a-started; sleep 300']
- id: b
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo b-started; sleep 300']
  waitFor: ['-']
Y
"$KILN" run p.yaml --executor "$EXEC" --workspace ws --report r.json --kill-grace 2s >out 2>&1 &
KPID=$!
wait_for 60 sh -c 'grep -q a-started out && grep -q b-started out'
kill -INT "$KPID"
rc=0; wait "$KPID" || rc=$?
check "kiln ends after Ctrl-C (exit $rc, not 0)" [ "$rc" != 0 ]
check "step a ends CANCELLED" [ "$(status r.json a)" = CANCELLED ]
check "step b ends CANCELLED" [ "$(status r.json b)" = CANCELLED ]
check "their Pods were deleted with the grace period (2 s)" log_has \
    'l["method"]=="DELETE" and "-a-" in l["path"] and l["query"].get("gracePeriodSeconds")=="2"'
check "no Pod is left" wait_for 60 no_pods
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# a log stream that breaks resumes without a lost or repeated line"
K2=$TMP/k8s-break
start_fake "$K2" --namespaces default,builds --kubelet podman --kubelet-dir "$K2/kubelet" --log-break-every 3000
sed "s|http://127.0.0.1:[0-9]*\"|http://127.0.0.1:$PORT\"|" "$KUBECONFIG" >"$TMP/kubeconfig-break"
mkdir -p break/ws && cd break
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: chatty
  name: IMG
  entrypoint: sh
  args: ['-c', 'i=1; while [ $$i -le 300 ]; do echo line-$$i; i=$$((i+1)); [ $$((i % 5)) = 0 ] && sleep 0.1; done; echo done-chatty']
Y
rc=$(KUBECONFIG=$TMP/kubeconfig-break run_kiln out run p.yaml --executor "$EXEC" --log-dir logs --workspace ws)
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
check "the stream broke and was resumed with sinceTime" python3 -c 'import json,sys
ls=[json.loads(x) for x in open(sys.argv[1])]
n=sum(1 for l in ls if l["path"].endswith("/log") and "sinceTime" in l["query"])
print("  resumed", n, "times"); sys.exit(0 if n >= 3 else 1)' "$K2/requests.jsonl"
check "every line arrived once, in order" python3 -c 'import sys
got=[l.rstrip("\n") for l in open(sys.argv[1]) if l.startswith("line-") or l.startswith("done-")]
want=["line-%d" % i for i in range(1, 301)] + ["done-chatty"]
if got != want:
    print("  got", len(got), "lines; first difference at", next((i for i,(a,b) in enumerate(zip(got,want)) if a!=b), min(len(got),len(want))))
sys.exit(0 if got == want else 1)' logs/chatty.log
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# kill -9 of kiln: the next run removes what it left"
mkdir -p killed/ws && cd killed
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: orphan
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo orphan-started; sleep 300']
Y
"$KILN" run p.yaml --executor "$EXEC" --workspace ws >out 2>&1 &
KPID=$!
wait_for 60 has_line out orphan-started
kill -9 "$KPID"; wait "$KPID" 2>/dev/null || true
check "the Pod outlives a kill -9'd kiln" [ "$(pods_left)" = 1 ]
left_dirs() { grep -l "\.$KPID\." "${TMPDIR:-/tmp}"/kiln-k8s-*/owner 2>/dev/null || true; }
check "so does its build directory (home, volumes)" [ -n "$(left_dirs)" ]
sed "s|IMG|$IMG|" >q.yaml <<'Y'
steps:
- id: next
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo next-ran']
Y
rc=$(run_kiln out2 run q.yaml --executor "$EXEC" --workspace ws)
check "the next run succeeds" [ "$rc" = 0 ]
check "... and says it removed the dead owner's Pod" has_line out2 "removing 1 pods left by builds no longer running"
check "... and removed its build directory" [ -z "$(left_dirs)" ]
check "no Pod is left" wait_for 60 no_pods
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

finish
