#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seed's first pipeline (pipelines/hello/cloudbuild.yaml: a diamond,
# substitutions, a step output, a finally step) end to end under
# `--executor kubernetes` with kiln-pod-helper, on the fake API server whose
# kubelet runs the Pods with podman. The pipeline's images (git, python,
# ubuntu) cannot be pulled here: they are tagged onto the busybox image in
# the private storage, so the steps' shell commands run for real in Pods.
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
no_pods() { [ "$(count pods)" = 0 ]; }
for name in gcr.io/cloud-builders/git python:3.11 ubuntu; do
    TMPDIR=$E/tmp podman tag "$IMG" "$name" >/dev/null 2>&1 || cannot_run "podman tag $name failed"
done

echo "# pipelines/hello as Pods"
mkdir -p hello/ws && cd hello
rc=$(run_kiln out.txt run "$KILN_SOURCE_DIR/pipelines/hello/cloudbuild.yaml" --executor "$EXEC" \
    --report r.json --workspace ws --sink "jsonl:path=$PWD/log.jsonl")
check "the build succeeds (exit $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -30 out.txt
check "every step SUCCESS, finally too" \
    [ "$(status r.json fetch)$(status r.json test)$(status r.json lint)$(status r.json package)$(status r.json summary)" = SUCCESSSUCCESSSUCCESSSUCCESSSUCCESS ]
check "substitutions reach the Pod" has_line out.txt "[fetch] fetching hello at"
check "a script step runs in its Pod" has_line out.txt "[test] test 3 ok"
check "a step output crosses Pods" has_line out.txt "[package] packaging hello (lint saw 42 lines)"
check "the Pod's file is in the workspace" has_line ws/out/package.txt "packaging hello (lint saw 42 lines)"
check "the finally step ran (locally: it names no image)" has_line out.txt "[summary] build finished"
check "4 Pods were made (the steps with an image)" [ "$(python3 -c 'import json,sys; print(sum(1 for x in open(sys.argv[1]) if (l:=json.loads(x))["method"]=="POST" and l["path"].endswith("/pods")))' "$K/requests.jsonl")" = 4 ]
check "framed where the step names its command (fetch, test: init container)" python3 -c 'import json,sys
n=sum(1 for l in map(json.loads, open(sys.argv[1])) if l["method"]=="POST" and l["path"].endswith("/pods")
      and (l["body"]["spec"].get("initContainers") or [{}])[0].get("name")=="kiln-helper")
sys.exit(0 if n>=2 else 1)' "$K/requests.jsonl"
check "no Pod is left" wait_for 60 no_pods
check "the kubelet left no container" wait_for 120 no_containers
cd "$TMP"
finish
