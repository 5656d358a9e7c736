#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ctest-labels: slow
# The kubernetes executor at scale, steps as Pods on the fake API server
# (its podman kubelet runs them for real), under kiln-pod-helper: 200
# steps 20 at a time (--max-parallel 20): every one succeeds with its own
# output, never more than 20 Pods at once, and no Pod or container is
# left (test_dag.sh's diamond as Pods: test_k8s_story.sh). Slow (minutes
# of podman): label slow. No time is asserted; limits only catch hangs.
#
# Needs podman, runc, a static busybox, root (scripts/deps.d/k8s-executor).
# KILN_SKIP_ENGINE_TESTS=1 skips it.
source "$(dirname "$0")/lib.sh"
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"

echo "# fixture: podman (the fake kubelet's runtime), the steps' image, the helper's image, fake API servers"
k8s_env_engine
k8s_env_image sh echo sleep cat seq test kill true false touch
k8s_env_helper_image
k8s_env_fake
EXEC="kubernetes:helperImage=$HIMG"
pods_left() { count pods; }
no_pods() { [ "$(pods_left)" = 0 ]; }

# ---------------------------------------------------------------------------
echo "# 200 steps, 20 at a time"
mkdir -p many/ws && cd many
{
    echo "steps:"
    for i in $(seq 200); do
        echo "- {id: s$i, name: $IMG, entrypoint: sh, args: ['-c', 'echo out-of-$i; echo err-of-$i >&2'], waitFor: ['-']}"
    done
} >p.yaml
# The kubelet's own count of running Pods, sampled while the build runs.
( while [ ! -e done ]; do pods_left >>counts 2>/dev/null || true; sleep 0.5; done ) &
SAMPLER=$!
rc=0
timeout 1500 "$KILN" run p.yaml --executor "$EXEC" --max-parallel 20 --report r.json --workspace ws \
    --sink "jsonl:path=$PWD/log.jsonl" >out.txt 2>&1 || rc=$?
touch done
wait "$SAMPLER" || true
check "200 steps: exit 0 (got $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out.txt
check "200 steps: every one SUCCESS" [ "$(jget r.json 'sum(1 for s in j["steps"] if s["status"]=="SUCCESS")')" = 200 ]
check "200 steps: each its own stdout line" [ "$(python3 -c 'import json,sys
n=set()
for l in open(sys.argv[1]):
    j=json.loads(l)
    if j.get("stream")=="stdout" and j.get("text")=="out-of-"+j.get("step_id","")[1:]: n.add(j["step_id"])
print(len(n))' log.jsonl)" = 200 ]
check "200 steps: and its stderr line on stderr" [ "$(python3 -c 'import json,sys
n=set()
for l in open(sys.argv[1]):
    j=json.loads(l)
    if j.get("stream")=="stderr" and j.get("text")=="err-of-"+j.get("step_id","")[1:]: n.add(j["step_id"])
print(len(n))' log.jsonl)" = 200 ]
maxrun=$(times r.json | python3 -c 'import sys
ev=[]
for l in sys.stdin:
    k,s,e=l.split(); ev+=[(float(s),1),(float(e),-1)]
cur=best=0
for _,d in sorted(ev, key=lambda x:(x[0],x[1])): cur+=d; best=max(best,cur)
print(best)')
check "200 steps: at most 20 ran at once (report: $maxrun)" [ "$maxrun" -le 20 ]
check "200 steps: more than one at a time (report: $maxrun)" [ "$maxrun" -gt 1 ]
maxpods=$(sort -n counts | tail -1)
check "200 steps: the API server never held more than 20 Pods of the build (+ ones being deleted) (max $maxpods)" [ "${maxpods:-0}" -le 40 ]
check "200 steps: POSTed 200 Pods" [ "$(python3 -c 'import json,sys; print(sum(1 for x in open(sys.argv[1]) if (l:=json.loads(x))["method"]=="POST" and l["path"].endswith("/pods")))' "$TMP/k8s/requests.jsonl")" -ge 200 ]
check "200 steps: no Pod is left" wait_for 120 no_pods
check "200 steps: the kubelet left no container" wait_for 120 no_containers
cd "$TMP"
finish
