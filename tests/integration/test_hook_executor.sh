#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln hook install --triggers and the executor: `--executor SPEC` (or
# KILN_EXECUTOR when installing) is written into the hook, so a push runs its
# builds through SPEC whatever the pusher's environment; a hook installed
# without one takes the pushing environment's KILN_EXECUTOR. The executor is
# the kubernetes one given a kubeconfig that does not exist: a build that
# goes through it stops before anything runs, saying so (no cluster needed:
# test_k8s_story.sh runs the seed story's hooks on the fake cluster).
source "$(dirname "$0")/lib.sh"
export KILN_PLUGIN_PATH=$KILN_BUILD_DIR/plugins
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
X=kubernetes:kubeconfig=$TMP/no-kubeconfig.yaml

git init -q --bare -b master app.git
git init -q -b master src
cat >src/cloudbuild.yaml <<'Y'
steps:
- id: inimage
  name: busybox
  entrypoint: sh
  args: ['-c', 'echo ran-in-image']
Y
git -C src add -A && git -C src commit -q -m one
cat >triggers.yaml <<Y
triggers:
- name: app
  repo: app
  branch: ^master\$
Y
# push N [VAR=VALUE...]: a new commit pushed, in an environment without
# KILN_EXECUTOR (plus the VARs): what it shows into push-N.txt
push() {
    local n=$1
    shift
    echo "$n" >src/f.txt && git -C src add -A && git -C src commit -q -m "$n"
    env -u KILN_EXECUTOR "$@" git -C src push -q "$TMP/app.git" HEAD:refs/heads/master >"push-$n.txt" 2>&1 || true
}

echo "# --executor is written into the hook"
env -u KILN_EXECUTOR "$KILN" hook install --triggers triggers.yaml --out builds --executor "$X" \
    app.git >inst.txt 2>&1
check "the install says which executor its builds use" has_line inst.txt "steps with an image through executor $X"
check "the hook runs kiln trigger with it" grep -qF -- "--executor '$X'" app.git/hooks/post-receive
push 1
check "a push without KILN_EXECUTOR: the build went through the hook's executor" \
    has_line push-1.txt "executor kubernetes: no cluster to deploy to: $TMP/no-kubeconfig.yaml: No such file"
check "... and nothing ran on this machine" lacks_line push-1.txt "ran-in-image"

echo "# KILN_EXECUTOR when installing: the same"
KILN_EXECUTOR="$X" "$KILN" hook install --triggers triggers.yaml --out builds app.git >inst2.txt 2>&1
check "the hook records KILN_EXECUTOR" grep -qF -- "--executor '$X'" app.git/hooks/post-receive

echo "# no executor when installing: the pusher's KILN_EXECUTOR applies"
env -u KILN_EXECUTOR "$KILN" hook install --triggers triggers.yaml --out builds app.git >inst3.txt 2>&1
check "the hook names no executor" lacks_line app.git/hooks/post-receive "--executor"
push 2
check "a push without KILN_EXECUTOR runs the step on this machine" has_line push-2.txt "ran-in-image"
push 3 KILN_EXECUTOR="$X"
check "a push with KILN_EXECUTOR goes through it" has_line push-3.txt "executor kubernetes: no cluster to deploy to: $TMP/no-kubeconfig.yaml: No such file"
finish
