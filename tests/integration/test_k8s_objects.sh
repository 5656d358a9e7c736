#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `kiln run --executor kubernetes`: the build's own objects on the cluster
# (plugins/executor_kubernetes/kube_build.c), on the fake API server whose
# kubelet runs each Pod for real with podman (tests/tools/k8s_env.sh), as
# the real kubectl sees them:
#  - secretEnv: one Secret per build, referenced with secretKeyRef only by
#    the Pods of the steps that declare the secretEnv; the step sees the
#    value, no Pod spec holds it, the log masks it, nothing is left;
#  - the owner ConfigMap kiln-build-ID: every Pod, the Secret and the claim
#    carry an ownerReference to it; `kubectl delete configmap` during a
#    build removes its Pods (the fake's garbage collector) and the build
#    fails saying its Pod was deleted; nothing is left;
#  - workspace=pvc-rwo: a ReadWriteOnce claim and every Pod after the first
#    bound to the first one's node; when that node goes (kubectl delete
#    node: the fake's PodGC removes the Pods bound to it), the step fails
#    saying the build's node is gone, for a Pod running there and for one
#    pinned to it after it went;
#  - kill -9 of kiln: the next run removes the dead build's Secret and owner.
# The fill modes (fill=git, gitSecret, fill=upload) are test_k8s_fill.sh's.
#
# Needs podman, runc, a static busybox, root and kubectl (scripts/deps.d/
# k8s-executor). KILN_SKIP_ENGINE_TESTS=1 skips it, as test_docker_build.
source "$(dirname "$0")/lib.sh"
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"

echo "# fixture: podman (the fake kubelet's runtime), an image, the fake API server"
k8s_env_start
k8s_need_kubectl
# one_json FILE EXPR: EXPR over the JSON document j (the last line may be a statement that prints)
one_json() { python3 -c 'import json,sys
j=json.load(open(sys.argv[1])); *pre, last = sys.argv[2].split("; ")
for s in pre: exec(s)
if last.startswith("print("): exec(last)
else: print(eval(last))' "$@"; }

# ---------------------------------------------------------------------------
echo "# secretEnv: a Secret for the build, referenced only where declared"
mkdir -p sec/ws && cd sec
VALUE=tok-s3cr3t-value-42
B64=$(printf %s "$VALUE" | base64)
sed "s|IMG|$IMG|" >p.yaml <<'Y'
availableSecrets:
  secretManager:
  - versionName: projects/p/secrets/api-token/versions/1
    env: TOKEN
steps:
- id: holder
  name: IMG
  entrypoint: sh
  secretEnv: [TOKEN]
  args: ['-c', 'echo token=$$TOKEN; echo "$$TOKEN" > /workspace/seen; while [ ! -e /workspace/go ]; do sleep 0.2; done; echo holder-done']
- id: plain
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo plain-sees-$$(env | grep -c TOKEN)-tokens; touch /workspace/plain-up; while [ ! -e /workspace/go ]; do sleep 0.2; done']
  waitFor: ['-']
Y
KILN_SECRET_API_TOKEN=$VALUE "$KILN" run p.yaml --executor "$EXEC" --report r.json --log-dir logs \
    --workspace ws >out 2>&1 &
KPID=$!
check "both steps run (their Pods are up)" wait_for 120 sh -c 'test -e ws/seen && test -e ws/plain-up'
check "the step sees the secret's value" [ "$(cat ws/seen 2>/dev/null)" = "$VALUE" ]
"${KUBECTL[@]}" get pods -l kiln.dev/step=holder -o json >holder.json 2>&1
"${KUBECTL[@]}" get pods -l kiln.dev/step=plain -o json >plain.json 2>&1
"${KUBECTL[@]}" get secrets -o json >secrets.json 2>&1
"${KUBECTL[@]}" get configmaps -o json >configmaps.json 2>&1
BUILD=$(one_json holder.json 'j["items"][0]["metadata"]["labels"]["kiln.dev/build"]' 2>/dev/null || echo none)
check "kubectl get pod -o json of the running step's Pod has no secret value" \
    sh -c "grep -q kiln.dev/build holder.json && ! grep -q -e '$VALUE' -e '$B64' holder.json"
check "... its env TOKEN is a secretKeyRef to kiln-build-$BUILD-env" [ "$(one_json holder.json \
    '[e["valueFrom"]["secretKeyRef"]["name"] for e in j["items"][0]["spec"]["containers"][0]["env"] if e["name"]=="TOKEN"][0]')" = "kiln-build-$BUILD-env" ]
check "the step without secretEnv has no reference to the Secret" [ "$(one_json plain.json \
    'len(j["items"]) == 1 and not any(e["name"] == "TOKEN" or "valueFrom" in e for e in j["items"][0]["spec"]["containers"][0]["env"])')" = True ]
check "one Secret, labelled with the build and the owner" [ "$(one_json secrets.json \
    'sum(1 for s in j["items"] if s["metadata"]["labels"].get("kiln.dev/build")=="'"$BUILD"'" and "kiln.dev/owner" in s["metadata"]["labels"])')" = 1 ]
check "... it holds the value (base64, in data.TOKEN)" [ "$(one_json secrets.json 'j["items"][0]["data"]["TOKEN"]')" = "$B64" ]
check "... owned by the ConfigMap kiln-build-$BUILD" [ "$(one_json secrets.json \
    'r=j["items"][0]["metadata"]["ownerReferences"][0]; print(r["kind"], r["name"], end="")')" = "ConfigMap kiln-build-$BUILD" ]
check "the owner ConfigMap exists, and the Pods name its uid" [ "$(one_json configmaps.json \
    '[c["metadata"]["uid"] for c in j["items"] if c["metadata"]["name"]=="kiln-build-'"$BUILD"'"][0]')" = \
    "$(one_json holder.json 'j["items"][0]["metadata"]["ownerReferences"][0]["uid"]')" ]
touch ws/go
rc=0; wait "$KPID" || rc=$?
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out | sed 's/^/  /'
check "the step's log masks the value" has_line logs/holder.log "token=********"
check "no secret value in the logs, console or report" sh -c "! grep -rq '$VALUE' logs out r.json"
check "the plain step saw no TOKEN" has_line logs/plain.log plain-sees-0-tokens
check "no Pod create sent the value (or its base64)" sh -c "! grep '\"path\": \"/api/v1/namespaces/builds/pods\"' '$K/requests.jsonl' | grep -q -e '$VALUE' -e '$B64'"
check "nothing is left: no Pod, Secret, ConfigMap or claim" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# the owner: kubectl delete configmap kiln-build-ID removes the build"
mkdir -p owner/ws && cd owner
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: long
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo long-started; i=0; while [ $$i -lt 600 ]; do sleep 0.5; i=$$((i+1)); done']
- id: after
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo after-ran']
Y
"$KILN" run p.yaml --executor "$EXEC,workspace=pvc" --report r.json --log-dir logs --workspace ws >out 2>&1 &
KPID=$!
check "the step runs" wait_for 120 has_line out long-started
"${KUBECTL[@]}" get pvc -o json >pvc.json 2>&1
"${KUBECTL[@]}" get pods -o json >pods.json 2>&1
OWNER=$("${KUBECTL[@]}" get configmaps -o name 2>/dev/null | grep kiln-build- | head -1)
check "the claim is owned by the build's ConfigMap" [ "$(one_json pvc.json \
    'r=j["items"][0]["metadata"]["ownerReferences"][0]; print("configmap/" + r["name"], end="")')" = "$OWNER" ]
check "so is the Pod" [ "$(one_json pods.json 'print("configmap/" + j["items"][0]["metadata"]["ownerReferences"][0]["name"], end="")')" = "$OWNER" ]
check "kubectl delete $OWNER succeeds" "${KUBECTL[@]}" delete "$OWNER" --timeout=60s
rc=0; wait "$KPID" || rc=$?
check "the build fails (exit 1)" [ "$rc" = 1 ]
check "the running step fails" [ "$(status r.json long)" = FAILURE ]
check "... saying its Pod was deleted" grep -q "long.*Pod kiln-.* was deleted" out
check "the next step never ran" sh -c "! grep -q after-ran out"
check "nothing is left: no Pod, Secret, ConfigMap or claim" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# workspace=pvc-rwo: a ReadWriteOnce claim, every Pod on the first one's node"
mkdir -p rwo/ws && cd rwo
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: first
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo rwo > /workspace/f.txt']
- id: second
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo second-read-$$(cat /workspace/f.txt)']
- id: third
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo third-ran']
  waitFor: ['-']
Y
rc=$(run_kiln out run p.yaml --executor "$EXEC,workspace=pvc-rwo" --log-dir logs --workspace ws)
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out | sed 's/^/  /'
check "the claim asked for ReadWriteOnce" log_has \
    'l["method"]=="POST" and l["path"].endswith("/persistentvolumeclaims") and l["body"]["spec"]["accessModes"]==["ReadWriteOnce"]'
check "the second step read the first one's file from the claim" has_line logs/second.log second-read-rwo
check "kiln says which node the build's Pods run on" has_line out "the build's Pods run on node kiln-fake-node"
nodes=$(python3 -c 'import json,sys
for x in open(sys.argv[1]):
    l=json.loads(x)
    if l["method"]=="POST" and l["path"].endswith("/pods"): print(l["body"]["spec"].get("nodeName","-"))' "$K/requests.jsonl" | tail -3 | tr '\n' ' ')
check "the first Pod was scheduled, the next two bound to its node ($nodes)" [ "$nodes" = "- kiln-fake-node kiln-fake-node " ]
check "nothing is left" wait_for 60 nothing_left
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# workspace=pvc-rwo: the build's node goes away (kubectl delete node; the fake's PodGC)"
mkdir -p gone/ws && cd gone
# A: a pinned Pod running on the node when it goes.
sed "s|IMG|$IMG|" >p.yaml <<'Y'
steps:
- id: first
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo rwo > /workspace/f.txt']
- id: long
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo long-started; sleep 60']
Y
"$KILN" run p.yaml --executor "$EXEC,workspace=pvc-rwo" --log-dir logs --workspace ws >out 2>&1 &
kpid=$!
started() { grep -q long-started logs/long.log 2>/dev/null; }
check "the pinned step runs" wait_for 120 started
node_now=$(api /api/v1/nodes | python3 -c 'import json,sys; print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))')
check "the fake has one node, kiln-fake-node ($node_now)" [ "$node_now" = kiln-fake-node ]
"${KUBECTL[@]}" delete node kiln-fake-node >kdel.txt 2>&1
check "kubectl deletes the node" grep -q 'deleted' kdel.txt
rc=0
wait_pid_for() { ! kill -0 "$kpid" 2>/dev/null; }
wait_for 120 wait_pid_for || kill -KILL "$kpid"
wait "$kpid" || rc=$?
check "the build fails (exit 1, was $rc)" [ "$rc" = 1 ]
check "... saying the build's node is gone and why" has_line out \
    "the build's node kiln-fake-node is gone (Pod "
check "... the Pod garbage collector's reason" has_line out "DeletionByPodGC: PodGC: node no longer exists"
check "... and what pvc-rwo needs" has_line out "workspace=pvc-rwo keeps the build's Pods on the node of its ReadWriteOnce claim"
check "... not the generic message" lacks_line out "was deleted by someone else"
check "nothing is left" wait_for 60 nothing_left

# B: a Pod pinned to the node after it went (the next step's): PodGC
# removes it rather than leave it Pending for good; kiln says the same.
sed "s|IMG|$IMG|; s|GONE|$PWD/node-gone|" >p2.yaml <<'Y'
steps:
- id: first
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo rwo > /workspace/f.txt']
- id: gate
  script: while [ ! -e GONE ]; do sleep 0.1; done
- id: late
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo late-ran']
Y
"$KILN" run p2.yaml --executor "$EXEC,workspace=pvc-rwo" --log-dir logs2 --workspace ws >out2 2>&1 &
kpid=$!
first_node() { grep -o "the build's Pods run on node [a-z0-9-]*" out2 | awk '{print $NF}'; }
has_node() { [ -n "$(first_node)" ]; }
check "the new build finds the node that joined" wait_for 120 has_node
n2=$(first_node)
check "... kiln-fake-node-2 ($n2)" [ "$n2" = kiln-fake-node-2 ]
gate_started() { grep -q '^\[gate\] starting' out2; }
check "the first step is over, the gate waits" wait_for 120 gate_started
curl -s -X DELETE "$SERVER/api/v1/nodes/$n2" >/dev/null
touch node-gone
rc=0
wait_for 120 wait_pid_for || kill -KILL "$kpid"
wait "$kpid" || rc=$?
check "the build fails (exit 1, was $rc)" [ "$rc" = 1 ]
late_node=$(python3 -c 'import json,sys
for x in open(sys.argv[1]):
    l=json.loads(x)
    b=l.get("body")
    if l["method"]=="POST" and l["path"].endswith("/pods") and isinstance(b,dict) and b["metadata"].get("labels",{}).get("kiln.dev/step")=="late":
        print(b["spec"].get("nodeName","-"))' "$K/requests.jsonl" | tr '\n' ' ')
check "... the late step's Pod was bound to the gone node ($late_node)" [ "$late_node" = "kiln-fake-node-2 " ]
check "... and kiln says the build's node is gone" has_line out2 "the build's node kiln-fake-node-2 is gone (Pod "
check "... the late step never ran" lacks_line logs2/late.log late-ran
check "nothing is left" wait_for 60 nothing_left
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# kill -9 of kiln: the next run removes the dead build's Secret and owner"
mkdir -p killed/ws && cd killed
sed "s|IMG|$IMG|" >p.yaml <<'Y'
availableSecrets:
  secretManager:
  - versionName: projects/p/secrets/api-token/versions/1
    env: TOKEN
steps:
- id: orphan
  name: IMG
  entrypoint: sh
  secretEnv: [TOKEN]
  args: ['-c', 'echo orphan-started; sleep 300']
Y
KILN_SECRET_API_TOKEN=$VALUE "$KILN" run p.yaml --executor "$EXEC" --workspace ws >out 2>&1 &
KPID=$!
wait_for 120 has_line out orphan-started
kill -9 "$KPID"; wait "$KPID" 2>/dev/null || true
check "the Secret outlives a kill -9'd kiln" [ "$(count secrets)" = 1 ]
check "so does the owner ConfigMap" [ "$(count configmaps)" = 1 ]
sed "s|IMG|$IMG|" >q.yaml <<'Y'
steps:
- id: next
  name: IMG
  entrypoint: sh
  args: ['-c', 'echo next-ran']
Y
rc=$(run_kiln out2 run q.yaml --executor "$EXEC" --workspace ws)
check "the next run succeeds" [ "$rc" = 0 ]
check "... and says it removed the dead build's Secret" has_line out2 "removing 1 secrets left by builds no longer running"
check "... and its owner" has_line out2 "removing 1 configmaps left by builds no longer running"
check "nothing is left" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 60 no_containers
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# a step plugin's spawn() runs in the step's image as a Pod (kedro-train with name:)"
mkdir -p kedro && cd kedro
mkdir -p ws && cp -r "$KILN_SOURCE_DIR/tests/data/kedro_project" ws/kedro_project
cp -a "$E/root" root
printf '#!/bin/sh\necho "kedro $* ran in the image, in $(pwd)"\n' >root/bin/kedro
chmod +x root/bin/kedro
tar -C root -cf kedro.tar .
TMPDIR=$E/tmp podman import kedro.tar localhost/kiln-k8s-kedro:1 >import.log 2>&1 || cat import.log
cat >p.yaml <<'Y'
steps:
- id: train
  name: localhost/kiln-k8s-kedro:1
  uses: kedro-train
  with: {project: ./kedro_project}
Y
rc=$(run_kiln out run p.yaml --executor "$EXEC" --log-dir logs --workspace ws)
check "the build succeeds (exit 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out | sed 's/^/  /'
check "kedro ran in the image, in the project's directory under /workspace, in a Pod" \
    grep -q "\[train\] kedro run.* ran in the image, in /workspace/kedro_project" out
check "its Pod was created with the plugin's command" log_has \
    'l["method"]=="POST" and l["path"].endswith("/pods") and l["body"]["spec"]["containers"][0]["image"]=="localhost/kiln-k8s-kedro:1" and "kedro" in " ".join(l["body"]["spec"]["containers"][0].get("command",[]) + l["body"]["spec"]["containers"][0].get("args",[]))'
check "nothing is left" wait_for 60 nothing_left
cd "$TMP"

# ---------------------------------------------------------------------------
echo "# a build without a Pod still removes its owner; fill=git needs a claim"
mkdir -p local/ws && cd local
cat >p.yaml <<'Y'
steps:
- id: here
  entrypoint: sh
  args: ['-c', 'echo ran-here']
Y
rc=$(run_kiln out run p.yaml --executor "$EXEC" --workspace ws)
check "a step without an image runs on this machine (exit 0)" [ "$rc" = 0 ]
check "... and the build's owner ConfigMap does not outlive it" wait_for 60 nothing_left
rc=$(run_kiln out2 run p.yaml --executor "$EXEC,fill=git" --workspace ws)
check "fill=git with workspace=hostpath: exit 2 before anything runs" [ "$rc" = 2 ]
check "... saying it needs a claim" has_line out2 "fill=git needs workspace=pvc or pvc-rwo"
check "... and nothing ran" sh -c '! grep -q ran-here out2'
cd "$TMP"

finish
