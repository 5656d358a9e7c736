#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve's log view on a long log (issue 13). A build of
# tests/integration/serve_web_lib.sh's logs.yaml prints LINES lines
# (default 1,000,000) from its step "first"; then:
#   store   the step's time under kiln serve (records + file sink) against
#           the same pipeline under `kiln run --log-dir` (file sink only)
#   open    chromium (headless, puppeteer-core) opening /builds/ID#step-first
#           until the last record's row is drawn: the median of RUNS, and the
#           JS heap then; against curl fetching what the page fetches
#           (limit=0, then one page of 500) and curl fetching the whole log
#           as text (what a page without range fetches would download)
# Usage: bench/serve_web.sh [path/to/kiln]   (LINES=, RUNS=3)
# Needs chromium, node, npm (scripts/deps.d/web), git, curl, python3.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export KILN=${1:-$here/build/runner/kiln} KILN_SOURCE_DIR=$here
LINES=${LINES:-1000000}
RUNS=${RUNS:-3}
source "$here/tests/integration/lib.sh"
source "$here/tests/integration/serve_lib.sh"
source "$here/tests/integration/serve_web_lib.sh"
CHROMIUM=$(command -v chromium || command -v chromium-browser) || { echo "no chromium" >&2; exit 1; }
PUPPETEER_DIR=$("$here/scripts/puppeteer.sh")
make_log_repo
start_serve
secs() { python3 -c 'import sys; print(f"{float(sys.argv[1]):.2f}")' "$1"; }

id=$(run_trigger logs "{\"branch\": \"master\", \"substitutions\": {\"_N\": \"$LINES\"}}")
wait_status 3600 "$id" SUCCESS FAILURE >/dev/null
serve_step=$(api GET "/api/builds/$id" | jq_ '[s["duration_s"] for s in j["steps"] if s["key"]=="first"][0]')
git -C "$TMP/work" checkout -q master
# kiln run checks substitutions strictly (MUST_MATCH); a trigger's build does not.
sed 's/^options: {automapSubstitutions: true}/options: {automapSubstitutions: true, substitutionOption: ALLOW_LOOSE}/' \
    "$TMP/work/logs.yaml" >"$TMP/work/run.yaml"
"$KILN" run "$TMP/work/run.yaml" --substitutions "_N=$LINES" --log-dir "$TMP/runlogs" \
    --report "$TMP/run.json" --workspace "$TMP/work" >/dev/null 2>&1
run_step=$(jget "$TMP/run.json" '[s["duration_s"] for s in j["steps"] if s["key"]=="first"][0]')
records=$(du -sk "$TMP/data/builds/$id/records" | cut -f1)
textlog=$(du -sk "$TMP/data/builds/$id/logs" | cut -f1)

opens=()
: >"$TMP/bench.jsonl"
for _ in $(seq "$RUNS"); do
    KILN_BASE=$BASE KILN_TOKEN=$TOKEN TMP=$TMP SHOTS=$TMP CHROMIUM=$CHROMIUM PUPPETEER_DIR=$PUPPETEER_DIR \
        BIG_LINES=$LINES BIG_BUILD=$id BENCH_OUT=$TMP/bench.jsonl \
        node "$here/tests/browser/serve_web.js" >"$TMP/browser.out" 2>&1 || { cat "$TMP/browser.out"; exit 1; }
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
open_ms=$(python3 -c 'import json,sys; print("\n".join(str(json.loads(l)["openMs"]) for l in open(sys.argv[1])))' "$TMP/bench.jsonl" | median)
heap=$(python3 -c 'import json,sys; print("\n".join(str(json.loads(l)["heapMB"]) for l in open(sys.argv[1])))' "$TMP/bench.jsonl" | median)
first_ms=$(curl -s -o /dev/null -w '%{time_total}' "$BASE/api/builds/$id/log?step=first&limit=0")
page_ms=$(curl -s -o /dev/null -w '%{time_total}' "$BASE/api/builds/$id/log?step=first&from=$((LINES - 496))&limit=500")
whole=$(curl -s -o /dev/null -w '%{time_total} %{size_download}' "$BASE/api/builds/$id/logs/first")
python3 - "$LINES" "$serve_step" "$run_step" "$open_ms" "$heap" "$first_ms" "$page_ms" $whole "$records" "$textlog" <<'PY'
import sys
lines, serve, run, open_ms, heap, a, b, whole_s, whole_b, rec_k, txt_k = sys.argv[1:]
serve, run, open_ms, heap = float(serve), float(run), float(open_ms), float(heap)
api_ms = (float(a) + float(b)) * 1000
print(f"lines                          {int(lines):,}")
print(f"step under kiln serve          {serve:.2f} s  ({serve / run:.2f}x kiln run --log-dir: {run:.2f} s)")
print(f"records on disk                {int(rec_k) / 1024:.1f} MiB (text log {int(txt_k) / 1024:.1f} MiB)")
print(f"page open (median)             {open_ms:.0f} ms, JS heap {heap:.1f} MB")
print(f"  what it fetches, by curl     {api_ms:.1f} ms (total + one page of 500)")
print(f"  the whole log, by curl       {float(whole_s) * 1000:.0f} ms for {int(whole_b) / 1048576:.1f} MiB")
PY
