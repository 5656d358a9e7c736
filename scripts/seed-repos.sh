#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Creates the seed's two repositories under WORK:
#   WORK/srv/purchase_predict.git, WORK/srv/purchase_predict_api.git  (bare, branch master)
#   WORK/src/purchase_predict, WORK/src/purchase_predict_api          (clones to push from)
# purchase_predict is the Kedro example project of tests/data/kedro_project
# with pipelines/purchase_predict on top (its cloudbuild.yaml and tests);
# purchase_predict_api is pipelines/purchase_predict_api.
# Usage: seed-repos.sh WORK
set -euo pipefail
work=${1:?usage: seed-repos.sh WORK}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work/srv" "$work/src"
export GIT_AUTHOR_NAME=kiln GIT_AUTHOR_EMAIL=kiln@example.invalid
export GIT_COMMITTER_NAME=kiln GIT_COMMITTER_EMAIL=kiln@example.invalid

for repo in purchase_predict purchase_predict_api; do
  git init -q --bare -b master "$work/srv/$repo.git"
  src=$work/src/$repo
  rm -rf "$src"
  mkdir -p "$src"
  if [ "$repo" = purchase_predict ]; then
    cp -r "$root/tests/data/kedro_project/." "$src/"
  fi
  cp -r "$root/pipelines/$repo/." "$src/"
  printf 'data/0[5-8]_*/*.json\n__pycache__/\nout/\n.kiln/\n' >"$src/.gitignore"
  git -C "$src" init -q -b master
  git -C "$src" add -A
  git -C "$src" commit -q -m "$repo: first version"
  git -C "$src" remote add origin "$work/srv/$repo.git"
done
