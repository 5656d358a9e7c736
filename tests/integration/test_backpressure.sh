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

# A console that does not read yet (a pipe into a command that sleeps): the
# console sink waits on its own thread and pushes back with KILN_EAGAIN; no
# line may be lost or reordered, and kiln must not block on the pipe.
( "$KILN" run p.yaml --plugin-path "$KILN_TEST_PLUGIN_DIR" | (sleep 2; cat) >console.txt ) 2>cerr
check "slow console: every line, in order" \
    cmp -s <(grep '^\[flood\] [0-9]*$' console.txt | sed 's/^\[flood\] //') <(seq 1 300000)
check "slow console: the build's end is printed last" sh -c "tail -1 console.txt | grep -q '^SUCCESS build'"

# While the console is stuck, the loop goes on: a partial line still
# reaches the log file after the flush delay (kiln used to block in the
# console's write, so nothing moved until the console read).
cat > chatty.yaml <<'Y'
steps:
- id: chatty
  script: |
    seq 1 50000
    printf 'partial-no-newline'
    for i in $(seq 2400); do [ -e release ] && break; sleep 0.05; done
Y
# 50,000 lines (289 KB) stay under the console's 1 MiB mark: the console is
# stuck, not full, so the other sinks go on. The console reads nothing until
# the check is done; the step holds its partial line until then.
( "$KILN" run chatty.yaml --log-dir clogs |
    (while [ ! -e unstick ]; do sleep 0.05; done; cat) >chatty.txt ) 2>/dev/null &
seen=0
for i in $(seq 1200); do
    if grep -q partial-no-newline clogs/chatty.log 2>/dev/null; then seen=1; break; fi
    sleep 0.05
done
check "stuck console: the partial line reached the log file meanwhile" test $seen = 1
touch unstick release
wait
check "stuck console: then every line on the console" test "$(grep -c '^\[chatty\] [0-9]*$' chatty.txt)" = 50000

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
