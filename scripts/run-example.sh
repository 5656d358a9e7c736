#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seed story, end to end, as a dry run, with no network (DESIGN.md, "The
# story it must tell"):
#   1. two bare repositories, purchase_predict (Kedro) and purchase_predict_api
#      (Flask), with kiln's post-receive hook and pipelines/triggers.yaml;
#   2. git push to staging, then to master: the hooks run the builds whose
#      trigger fires; the model build trains, then builds the API at the same
#      branch as a sub-build; deploys are recorded by mock-deploy, image pushes
#      (and builds, without a Docker engine) by docker-build, in plan files;
#   3. a push to a branch no trigger watches, and a push that only touches
#      ignored files: nothing runs.
# Everything goes to a new directory (or $KILN_EXAMPLE_DIR), kept afterwards.
# Usage: run-example.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac
kiln=$build/runner/kiln
work=${KILN_EXAMPLE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/kiln-example.XXXXXX")}
mkdir -p "$work"
export KILN_PLUGIN_PATH=$build/plugins
export GIT_AUTHOR_NAME=kiln GIT_AUTHOR_EMAIL=kiln@example.invalid
export GIT_COMMITTER_NAME=kiln GIT_COMMITTER_EMAIL=kiln@example.invalid
# Kedro cannot be installed here: the training step runs kiln's stand-in.
export PATH=$root/tests/kedro:$PATH
say() { printf '\n\033[1m### %s\033[0m\n' "$*"; }

say "kiln's seed story, in $work"
echo "note: kedro is not installed; the train step runs the stand-in $root/tests/kedro/kedro"
echo "note: a dry run: deploys are recorded by mock-deploy and image pushes by docker-build in each build's"
echo "      plan file (and the image build too when no Docker engine answers); everything else runs"

say "1. two bare repositories, four triggers, the post-receive hooks"
bash "$root/scripts/seed-repos.sh" "$work"
"$kiln" trigger --list --triggers "$root/pipelines/triggers.yaml"
for repo in purchase_predict purchase_predict_api; do
  "$kiln" hook install --dry-run --out "$work/builds" --triggers "$root/pipelines/triggers.yaml" \
    "$work/srv/$repo.git"
done

push() {  # push REPO BRANCH: what `git push` shows, the builds included
  say "git push $1 $2"
  git -C "$work/src/$1" push -q origin "HEAD:refs/heads/$2" 2>&1 | sed -e 's/^remote: //' -e 's/ *$//'
}

say "2. push to staging (the API deploys to Cloud Run)"
push purchase_predict_api staging
push purchase_predict staging

say "3. push to master (the API deploys to Kubernetes)"
push purchase_predict_api master
push purchase_predict master

say "4. pushes no trigger builds"
git -C "$work/src/purchase_predict" checkout -q -b feature-x
push purchase_predict feature-x
git -C "$work/src/purchase_predict" checkout -q master
echo "More about the model." >>"$work/src/purchase_predict/README.md"
git -C "$work/src/purchase_predict" commit -q -am "docs only"
git -C "$work/src/purchase_predict" push -q origin master:refs/heads/staging --force 2>&1 |
  sed -e 's/^remote: //' -e 's/ *$//'

say "where everything is"
for r in "$work"/builds/*/report.json; do
  d=$(dirname "$r")
  python3 - "$r" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def show(b, indent):
    print(f"{indent}{b['status']:8} {b['pipeline']}")
    for s in b["steps"]:
        if s.get("mockedBy"):
            extra = f" (recorded by {s['mockedBy']})"
        elif s.get("plan"):
            extra = " (recorded in the plan)"
        else:
            extra = ""
        print(f"{indent}  {s['status']:8} {s['key']:8} {s.get('uses', '?')}{extra}")
        for c in s.get("builds", []):
            show(c, indent + "    ")
show(r, "")
PY
  echo "  logs:   $d/logs/"
  ls "$d"/plan-*.jsonl 2>/dev/null | sed 's/^/  plan:   /'
  echo "  report: $r"
done
