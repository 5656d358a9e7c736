#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole seed story (scripts/run-example.sh: pushes to staging and
# master, kiln's post-receive hooks, the model's sub-build of the API at the
# same branch, the dry-run plans, kiln serve's weekly retraining) with
# KILN_EXECUTOR=kubernetes:helperImage=...: every step with an image runs as
# a Pod on the fake API server, whose kubelet runs it with podman. Checked:
# everything test_seed.sh checks (seed_checks.sh), and from the fake's log
# and kubectl: one Pod per imaged step of every build and sub-build, under
# the helper; the sub-build's Pods carry the top build's id and mount the
# sub-build's own workspace; the unittest output is in the steps' logs;
# nothing is left. And test_dag.sh's diamond (tests/data/dag/, steps
# without an image there) with an image on every step: b and c overlap as
# Pods.
#
# The images cannot be pulled here: python:3.11 is made on the spot from
# this machine's python3 (k8s_env_python_image), ubuntu is busybox;
# gcr.io/cloud-builders/docker never runs as a Pod (docker-build is an API
# client), kedro-train (no image) runs on this machine.
#
# Needs podman, runc, a static busybox, Debian's python3, root
# (scripts/deps.d/k8s-executor, k8s-story). KILN_SKIP_ENGINE_TESTS=1 skips it.
source "$(dirname "$0")/lib.sh"
source "$KILN_SOURCE_DIR/tests/tools/k8s_env.sh"
source "$KILN_SOURCE_DIR/tests/integration/seed_checks.sh"
: "${KILN_BUILD_DIR:?}"

echo "# fixture: podman, the images (python from this machine, busybox as ubuntu), the helper, the fake"
k8s_env_engine git
k8s_env_image sh echo cat test sed grep mkdir touch seq sleep
k8s_env_python_image
k8s_env_helper_image
k8s_env_fake
k8s_env_kubectl
for pair in "$PYIMG=python:3.11" "$IMG=ubuntu"; do
    TMPDIR=$E/tmp podman tag "${pair%%=*}" "${pair#*=}" >/dev/null 2>&1 || cannot_run "podman tag ${pair#*=} failed"
done
cleanup_k8s() { TMPDIR=$E/tmp podman rm -af -t 0 >/dev/null 2>&1 || true; }
trap 'cleanup_k8s; cleanup' EXIT

echo "# the fixture took $SECONDS s; the seed story, its steps with an image as Pods"
# kubectl watches the namespace's Pods meanwhile (the real client)
if [ -n "$KUBECTL_BIN" ]; then
    seen=$(kubectl_watches pods)
    "${KUBECTL[@]}" get pods -w --output-watch-events -L kiln.dev/build,kiln.dev/sub-build --no-headers \
        >"$TMP/kubectl-watch.txt" 2>&1 &
    WPID=$!
    FAKE_PIDS+=("$WPID") # stopped by lib.sh's cleanup if the test ends early
    # the story starts once the watch is open: no Pod can come and go unseen
    wait_for 60 watch_opened pods "$seen" || echo "  kubectl's watch was not seen by the fake"
fi
t0=$(date +%s)
rc=0
KILN_EXECUTOR="kubernetes:helperImage=$HIMG" KILN_EXAMPLE_DIR=$TMP/ex \
    bash "$KILN_SOURCE_DIR/scripts/run-example.sh" "$KILN_BUILD_DIR" >"$TMP/out.txt" 2>&1 || rc=$?
echo "# run-example took $(($(date +%s) - t0)) s"
check "run-example.sh exits 0 (exit $rc)" [ "$rc" = 0 ]
seed_checks "$TMP/ex" "$TMP/out.txt"

# kubectl_saw EVENT N SUB: N Pods had EVENT in kubectl's watch, SUB of
# them with a kiln.dev/sub-build label (an id in its column; empty for the
# top builds' Pods)
kubectl_saw() {
    python3 -c 'import re,sys
ev,n,sub=sys.argv[2],int(sys.argv[3]),int(sys.argv[4])
rows=[l.split() for l in open(sys.argv[1]) if l.split()[:1]==[ev]]
names={r[1] for r in rows}
uuid=lambda v: re.fullmatch("[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", v)
subs={r[1] for r in rows if uuid(r[-1]) and uuid(r[-2])}  # BUILD and SUB-BUILD columns
print("  kubectl saw %d %s, %d of sub-builds" % (len(names), ev, len(subs)))
sys.exit(0 if (len(names), len(subs)) == (n, sub) else 1)' "$TMP/kubectl-watch.txt" "$1" "$2" "$3"
}
if [ -n "$KUBECTL_BIN" ]; then
    kill "$WPID" 2>/dev/null || true
    wait "$WPID" 2>/dev/null || true
    check "kubectl get pods -w saw 11 Pods ADDED, 5 of them labelled with their sub-build" kubectl_saw ADDED 11 5
    check "... and the 11 DELETED" kubectl_saw DELETED 11 5
fi

echo "# the executor reached every build: the hooks (which recorded it), kiln serve ($SECONDS s)"
for repo in purchase_predict purchase_predict_api; do
    check "$repo's hook runs kiln trigger --executor kubernetes:helperImage=..." \
        grep -qF -- "--executor 'kubernetes:helperImage=$HIMG'" "$TMP/ex/srv/$repo.git/hooks/post-receive"
done
check "the pushes (without KILN_EXECUTOR) ran 4 builds on the cluster" \
    test "$(grep -c '^kiln: executor kubernetes: kubeconfig .*, context fake, namespace builds' "$TMP/out.txt")" = 4
check "kiln serve opened the executor (KILN_EXECUTOR)" has_line "$TMP/ex/serve.log" "executor kubernetes: ready"
check "... and an instance for the scheduled build" grep -q 'WORKING at .* (executor kubernetes opened in' "$TMP/ex/serve.log"

echo "# the Pods (the fake's log): one per step with an image, of every build and sub-build ($SECONDS s)"
# pods_check WHAT: the Pods created (POST .../pods) against what the
# reports say ran; WHAT is one of the checks below.
pods_check() {
    python3 - "$1" "$K/requests.jsonl" "$HIMG" "$ms" "$mm" "$as" "$am" "$sr" <<'PY'
import json, os, sys
what, log, himg, reports = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
imaged = {"cloudbuild.yaml": ["test"], "cloudbuild-staging.yaml": ["test"],
          "cloudbuild-master.yaml": ["test", "render"]}
image = {"test": "python:3.11", "render": "ubuntu"}
want = []
def walk(b, top):
    for k in imaged[os.path.basename(b["pipeline"])]:
        assert [s["status"] for s in b["steps"] if s["key"] == k] == ["SUCCESS"], (b["id"], k)
        want.append((top, b["id"], k, image[k], b["workspace"]))
    for s in b["steps"]:
        for c in s.get("builds", []):
            walk(c, top)
for r in reports:
    r = json.load(open(r))
    walk(r, r["id"])
pods = [l["body"] for l in map(json.loads, open(log))
        if l["method"] == "POST" and l["path"].endswith("/pods")]
def own(p):
    return next(e["value"] for e in p["spec"]["containers"][0]["env"] if e["name"] == "KILN_BUILD_ID")
def ws(p):
    return next(v["hostPath"]["path"] for v in p["spec"]["volumes"] if v["name"] == "workspace")
got = [(p["metadata"]["labels"]["kiln.dev/build"], own(p), p["metadata"]["labels"]["kiln.dev/step"],
        p["spec"]["containers"][0]["image"], ws(p)) for p in pods]
bad = []
if what == "set":
    if sorted(got) != sorted(want):
        bad = ["want %s" % (w,) for w in sorted(set(want) - set(got))] + \
              ["got  %s" % (g,) for g in sorted(set(got) - set(want))] + \
              ["counts: want %d, got %d" % (len(want), len(got))]
elif what == "helper":
    for p in pods:
        init = p["spec"].get("initContainers") or [{}]
        c = p["spec"]["containers"][0]
        if (init[0].get("name"), init[0].get("image")) != ("kiln-helper", himg) or \
           c.get("command") != ["/kiln/kiln-pod-helper", "--"]:
            bad.append(p["metadata"]["name"])
elif what == "labels":
    for p, g in zip(pods, got):
        lab = p["metadata"]["labels"]
        sub = lab.get("kiln.dev/sub-build")
        owner = p["metadata"]["ownerReferences"][0]["name"]
        if sub != (g[1] if g[1] != g[0] else None) or owner != "kiln-build-" + g[0]:
            bad.append("%s: sub-build label %s, own build %s, owner %s" % (p["metadata"]["name"], sub, g[1], owner))
elif what == "subs":
    # the sub-builds' Pods: at least one per sub-build of the three builds that have one
    bad = [] if len({g[1] for g in got if g[0] != g[1]}) == 3 else ["sub-builds: %s" % got]
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
}
check "a Pod for each imaged step of each build and sub-build (model test; API test; master API render), no other" \
    pods_check set
check "the three sub-builds' steps ran as Pods (in the sub-build's own workspace)" pods_check subs
check "every Pod ran its step under the helper (init container kiln-helper from $HIMG)" pods_check helper
check "a sub-build's Pods: kiln.dev/build and owner the top build's, kiln.dev/sub-build its own id" pods_check labels
check "no Pod for docker-build's steps, nor for train (no image: this machine)" \
    python3 -c 'import json,sys
sys.exit(any(l["method"]=="POST" and l["path"].endswith("/pods") and
             (l["body"]["spec"]["containers"][0]["image"].startswith("gcr.io/cloud-builders/docker")
              or l["body"]["metadata"]["labels"]["kiln.dev/step"]=="train")
             for l in map(json.loads, open(sys.argv[1]))))' "$K/requests.jsonl"

echo "# the steps' output, from the Pods ($SECONDS s)"
# step_logs REPORT STEP: the log files of STEP in the build and its sub-build
sub_id() { q "$1" '[s for s in r["steps"] if s["key"]=="api"][0]["builds"][0]["id"]'; }
logs_of() {  # logs_of TOP-LOG-DIR SUB-LOG-DIR
    local model=$1/test.log api=$2/test.log
    grep -q 'test_kedro_project_layout (test_nodes.LayoutTest.*) ... ok' "$model" &&
        grep -q '^Ran 2 tests in' "$model" && grep -qx OK "$model" &&
        grep -q '^Ran 1 test in' "$api" && grep -qx OK "$api"
}
for r in "$ms" "$mm"; do
    check "$(basename "$(dirname "$r")"): the model's and the sub-build's unittest output is in their logs" \
        logs_of "$(dirname "$r")/logs" "$(dirname "$r")/logs/$(sub_id "$r")"
done
check "the scheduled build: the model's and the sub-build's unittest output is in their logs" \
    logs_of "$(dirname "$sr")/logs" "$TMP/ex/serve/builds/$(sub_id "$sr")/logs"
for r in "$as" "$am"; do
    check "$(basename "$(dirname "$r")"): the API's unittest output is in its log" \
        grep -q '^Ran 1 test in' "$(dirname "$r")/logs/test.log"
done
check "api master: render ran in its Pod (busybox as ubuntu) and wrote into the workspace" \
    grep -q "purchase-predict-api:${api_master:0:7}" "$(q "$am" 'r["workspace"]')/out/config.yaml"
check "... its log says so" grep -q '^rendered [1-9][0-9]* manifests into out/config.yaml' "$(dirname "$am")/logs/render.log"
check "the model's master sub-build rendered in its own workspace (the API's checkout)" \
    grep -q "purchase-predict-api:${api_master:0:7}" \
    "$(q "$mm" '[s for s in r["steps"] if s["key"]=="api"][0]["builds"][0]["workspace"]')/out/config.yaml"

echo "# test_dag.sh's diamond (tests/data/dag/diamond.yaml) as Pods: b and c hand-shake through /workspace ($SECONDS s)"
mkdir -p dag/ws && cd dag
k8s_env_imaged "$KILN_SOURCE_DIR/tests/data/dag/diamond.yaml" "$IMG" >diamond.yaml
rc=$(run_kiln out.txt run diamond.yaml --executor "kubernetes:helperImage=$HIMG" --max-parallel 4 \
    --report r.json --workspace ws)
check "diamond as Pods exits 0 (exit $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -20 out.txt
diamond_checks r.json out.txt
check "diamond: its 4 steps ran as 4 Pods of the build" [ "$(python3 -c 'import json,sys
print(sum(1 for l in map(json.loads, open(sys.argv[1])) if l["method"]=="POST" and l["path"].endswith("/pods")
          and l["body"]["metadata"]["labels"]["kiln.dev/build"]==sys.argv[2]))' "$K/requests.jsonl" "$(jget r.json 'j["id"]')")" = 4 ]
cd "$TMP"

echo "# nothing is left ($SECONDS s)"
check "no Pod, Secret, ConfigMap or claim is left on the API server" wait_for 60 nothing_left
check "the kubelet left no container" wait_for 120 no_containers
host_dirs_gone() {
    python3 -c 'import json,os,sys
left=[v["hostPath"]["path"] for l in map(json.loads, open(sys.argv[1])) if l["method"]=="POST" and l["path"].endswith("/pods")
      for v in l["body"]["spec"]["volumes"] if "hostPath" in v and v["name"]!="workspace" and os.path.exists(v["hostPath"]["path"])]
print("\n".join("  left: "+p for p in left)); sys.exit(1 if left else 0)' "$K/requests.jsonl"
}
check "the builds' host directories (/builder/home, \$KILN_OUTPUT) are removed" host_dirs_gone
if [ -n "$KUBECTL_BIN" ]; then
    "${KUBECTL[@]}" get pods,secrets,configmaps,persistentvolumeclaims -l app.kubernetes.io/managed-by=kiln \
        >"$TMP/kubectl.txt" 2>&1 || true
    check "kubectl: no resources of kiln's are left in the namespace" has_line "$TMP/kubectl.txt" "No resources found"
elif [ "${KILN_REQUIRE_KUBECTL:-${KILN_REQUIRE_SHARED:-0}}" = 1 ]; then
    fail "kubectl is required: $(cat "$TMP/kubectl-why")"
else
    echo "skip - kubectl's view: no kubectl could be had ($(cat "$TMP/kubectl-why"))"
fi

echo "# done ($SECONDS s)"
finish || { echo "--- run-example output"; tail -80 "$TMP/out.txt"; exit 1; }
