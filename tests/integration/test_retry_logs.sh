#!/usr/bin/env bash
# A retried step: outputs come from the attempt that succeeded only, and
# kiln's retry message in the step's log file starts on a line of its own
# even when the failed attempt ended on a partial line.
set -uo pipefail
: "${KILN:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL - $what"; fi; }

cat > p.yaml <<'Y'
steps:
- id: p
  script: |
    n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count
    echo "attempt=$n" >> "$KILN_OUTPUT"
    [ $n -ge 1 ] || echo "only-from-the-failed-attempt=yes" >> "$KILN_OUTPUT"
    printf "partial $n"; [ $n -ge 1 ]
  retry: {limit: 2, backoff: 100ms}
- id: q
  args: [sh, -c, 'echo "saw ${{ steps.p.outputs.attempt }}"']
Y
"$KILN" run p.yaml --log-dir logs --report r.json --quiet >out 2>err; rc=$?
check "exit 0 after one retry" test $rc = 0
check "the output is the successful attempt's" grep -qx "saw 1" logs/q.log
check "outputs of the failed attempt are dropped" python3 -c '
import json; o = json.load(open("r.json"))["steps"][0]["outputs"]
assert o == {"attempt": "1"}, o'
check "the failed attempt's partial line stays whole" grep -qx "partial 0" logs/p.log
check "the retry message has a line of its own" grep -qx "kiln: attempt 1 of 3 failed: step exited with non-zero status: 1; retrying in 0.10s" logs/p.log

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
