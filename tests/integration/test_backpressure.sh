#!/usr/bin/env bash
# A sink slower than the step: kiln must stop reading the step's output
# while the sink is busy (no write reaches a paused sink), lose no line and
# keep the order; the step itself is slowed down, not cut short.
set -uo pipefail
: "${KILN:?}" "${KILN_TEST_PLUGIN_DIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL - $what"; fi; }

cat > p.yaml <<'Y'
steps:
- id: flood
  args: [seq, 1, 300000]
Y
"$KILN" run p.yaml --plugin-path "$KILN_TEST_PLUGIN_DIR" --quiet --log-dir logs \
    --sink "slow:report=$work/slow.txt,delay_us=300" >out 2>err; rc=$?
check "exit 0" test $rc = 0
read -r lines in_order while_paused < slow.txt
check "the slow sink got every line ($lines of 300000)" test "$lines" = 300000
check "in order" test "$in_order" = 1
check "no write while the sink was paused ($while_paused)" test "$while_paused" = 0
check "the file sink, beside it, has every line" cmp -s logs/flood.log <(seq 1 300000)

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
