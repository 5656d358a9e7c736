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
#      ignored files: nothing runs;
#   5. kiln serve with the same triggers file runs the weekly retraining
#      (schedule: 0 3 * * MON) when its clock says Monday 03:00.
# Everything goes to a new directory (or $KILN_EXAMPLE_DIR), kept afterwards.
# With KILN_EXECUTOR set (e.g. kubernetes:context=C,helperImage=I), the
# hooks record it and kiln serve reads it: the steps with an image run
# through that executor (docs/KUBERNETES.md, "The seed story as Pods").
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
if [ -n "${KILN_EXECUTOR:-}" ]; then
  echo "note: KILN_EXECUTOR=$KILN_EXECUTOR: the hooks (which record it) and kiln serve run every step"
  echo "      with an image through it; the others (train, the sub-build's submit) run on this machine"
fi

say "1. two bare repositories, four triggers, the post-receive hooks"
bash "$root/scripts/seed-repos.sh" "$work"
"$kiln" trigger --list --triggers "$root/pipelines/triggers.yaml"
for repo in purchase_predict purchase_predict_api; do
  "$kiln" hook install --dry-run --out "$work/builds" --triggers "$root/pipelines/triggers.yaml" \
    "$work/srv/$repo.git"
done

# The pushes come from a developer's environment, not the server's: the
# executor (KILN_EXECUTOR) reaches the builds through the hooks, which
# recorded it when installed, as on a real git server.
push() {  # push REPO BRANCH: what `git push` shows, the builds included
  say "git push $1 $2"
  env -u KILN_EXECUTOR git -C "$work/src/$1" push -q origin "HEAD:refs/heads/$2" 2>&1 |
    sed -e 's/^remote: //' -e 's/ *$//'
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
env -u KILN_EXECUTOR git -C "$work/src/purchase_predict" push -q origin master:refs/heads/staging --force 2>&1 |
  sed -e 's/^remote: //' -e 's/ *$//'

say "5. kiln serve runs the weekly retraining (purchase-predict-master, schedule \"0 3 * * MON\")"
# The server's clock is a file (KILN_TEST_CLOCK), so that the example does
# not wait for Monday: a minute before 03:00 UTC on a Monday, then 03:00.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export KILN_SERVER=http://127.0.0.1:$port
echo 2026-12-07T02:59:00Z >"$work/serve-clock"
KILN_TEST_CLOCK=$work/serve-clock "$kiln" serve --dry-run --triggers "$root/pipelines/triggers.yaml" \
  --repos "$work/srv" --data "$work/serve" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -sf -o /dev/null "$KILN_SERVER/api/builds" && break; sleep 0.1; done
echo "kiln serve --dry-run --triggers pipelines/triggers.yaml --repos $work/srv  (clock: Monday 02:59 UTC)"
grep -o 'schedule: trigger .*' "$work/serve.log" || true
echo 2026-12-07T03:00:00Z >"$work/serve-clock.new" && mv "$work/serve-clock.new" "$work/serve-clock"
echo "clock: Monday 03:00 UTC"
scheduled() { curl -s "$KILN_SERVER/api/builds?trigger=purchase-predict-master" |
  python3 -c 'import json,sys; b=json.load(sys.stdin)["builds"]; print(b[0]["status"] if b else "")'; }
for _ in $(seq 6000); do
  case $(scheduled) in SUCCESS|FAILURE|TIMEOUT|CANCELLED|INTERNAL_ERROR) break ;; esac
  sleep 0.1
done
"$kiln" builds list
kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
grep -o 'schedule: trigger purchase-predict-master, .*' "$work/serve.log" || true
echo "  history: $work/serve/kiln.db  builds: $work/serve/builds/"

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
