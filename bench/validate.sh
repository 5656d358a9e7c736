#!/usr/bin/env bash
# How long `kiln validate` takes on a 100-step Cloud Build config with dynamic
# substitutions (issue target: under 20 ms). Usage: bench/validate.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=$root/${1:-build}/runner/kiln
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cfg=$work/cloudbuild.yaml
{
    echo "options: {dynamic_substitutions: true, substitution_option: MUST_MATCH}"
    echo "substitutions:"
    echo "  _TAG: v1-2-3"
    echo "  _VERSION: '\${_TAG:1}'"
    echo "  _UNDERSCORED: '\${_VERSION//-/_}'"
    echo "  _UPPER: '\${_UNDERSCORED^^}'"
    echo "  _IMAGE: 'europe-docker.pkg.dev/\${PROJECT_ID}/app/api'"
    echo "steps:"
    for i in $(seq 0 99); do
        echo "- id: step-$i"
        echo "  name: gcr.io/cloud-builders/docker"
        if [ "$i" -gt 0 ]; then echo "  waitFor: [step-$((i - 1))]"; fi
        echo "  args: [build, -t, '\$_IMAGE:\$_VERSION-$i', --build-arg, 'V=\${_UPPER}', --label, 'sha=\$SHORT_SHA', --label, 'u=\$_UNDERSCORED', .]"
        echo "  env: ['STEP=$i', 'TAG=\$_TAG']"
    done
} > "$cfg"
"$kiln" validate "$cfg" >/dev/null
runs=50
if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 5 --runs $runs "$kiln validate $cfg" --export-json "$work/h.json" >/dev/null
    python3 - "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"kiln validate, 100 steps, dynamic substitutions: median {r['median']*1000:.1f} ms, "
      f"min {r['min']*1000:.1f} ms, max {r['max']*1000:.1f} ms over {len(r['times'])} runs (target < 20 ms)")
PY
else
    start=$(date +%s%N)
    for _ in $(seq $runs); do "$kiln" validate "$cfg" >/dev/null; done
    end=$(date +%s%N)
    echo "kiln validate, 100 steps, dynamic substitutions: mean $(( (end - start) / runs / 1000 )) us over $runs runs (target < 20 ms)"
fi
