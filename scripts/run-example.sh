#!/usr/bin/env bash
# Runs the bundled example pipeline with the freshly built kiln.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/$build/runner/kiln" run --dry-run "$root/pipelines/hello/cloudbuild.yaml" \
  --workspace "$work" --log-dir "$work/logs" --report "$work/report.json"
