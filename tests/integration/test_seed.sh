#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seed story (issue 4) as the README's first command runs it
# (scripts/run-example.sh): real bare repositories, kiln's post-receive
# hooks, real `git push`es, dry runs; the checks on what it did are
# tests/integration/seed_checks.sh (test_k8s_story.sh runs the same story
# with its steps as Pods).
set -euo pipefail
: "${KILN_SOURCE_DIR:?}" "${KILN_BUILD_DIR:?}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-seed-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILS=0
pass() { echo "ok   - $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
source "$KILN_SOURCE_DIR/tests/integration/seed_checks.sh"

KILN_EXAMPLE_DIR=$TMP/ex bash "$KILN_SOURCE_DIR/scripts/run-example.sh" "$KILN_BUILD_DIR" >"$TMP/out.txt" 2>&1 ||
  { cat "$TMP/out.txt"; fail "run-example.sh exits 0"; }
seed_checks "$TMP/ex" "$TMP/out.txt"

if [ "$FAILS" -ne 0 ]; then
  echo "--- run-example output"; tail -80 "$TMP/out.txt"
  exit 1
fi
