#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Backpressure with executor plugins, and an executor's work after close(),
# seen through test-recorder (tests/plugins/exec_recorder/) and the test
# sink "slow" (tests/plugins/sink_slow/: busy after every write, counting
# writes that reach it while it is paused). No container engine needed.
#
# 1. A resume that delivers output inside the call (an executor handing
#    over what it held, as the kubernetes executor does): that output fills
#    the sink again, and no other process may then be resumed, nor one be
#    left paused for good when a process ends inside its resume.
# 2. Two sinks, one quick and one slow: the quick one's ready resumes
#    nothing while the slow one is over.
# 3. close() queues a job on a worker thread: the instance is destroyed
#    only after the job's `after` ran (ASan sees a late `after` otherwise).
source "$(dirname "$0")/lib.sh"
: "${KILN_TEST_PLUGIN_DIR:?}"

N=150 # lines per process
cat >p.yaml <<'YAML'
steps:
- {id: a, name: some/image, args: [x], waitFor: ['-']}
- {id: b, name: some/image, args: [x], waitFor: ['-']}
- {id: c, name: some/image, args: [x], waitFor: ['-']}
- {id: d, name: some/image, args: [x], waitFor: ['-']}
- {id: e, name: some/image, args: [x], waitFor: ['-']}
- {id: f, name: some/image, args: [x], waitFor: ['-']}
YAML

rc=$(timeout 300 "$KILN" run p.yaml --plugin-path "$KILN_TEST_PLUGIN_DIR" --quiet --log-dir logs \
    --executor "test-recorder:log=$TMP/rec.log,lines=$N" \
    --sink "slow:report=$TMP/slow.txt,delay_us=2000" >out.txt 2>&1; echo $?)
check "six processes resumed through a slow sink: exit 0 (rc $rc)" test "$rc" = 0
read -r lines _ while_paused <slow.txt
check "... the sink got every line ($lines of $((6 * (N + 1))))" test "$lines" = $((6 * (N + 1)))
check "... no write reached it while it was paused ($while_paused)" test "$while_paused" = 0
ok=1
for s in a b c d e f; do
    [ "$(grep -c '^[0-9]*$' "logs/$s.log")" = "$N" ] || ok=0
    cmp -s <(grep '^[0-9]*$' "logs/$s.log") <(seq 1 $N) || ok=0
done
check "... each step's log has its $N lines in order" test $ok = 1

rc=$(timeout 300 "$KILN" run p.yaml --plugin-path "$KILN_TEST_PLUGIN_DIR" --quiet \
    --executor "test-recorder:log=$TMP/rec2.log,lines=$N" \
    --sink "slow:report=$TMP/quick.txt,delay_us=0" \
    --sink "slow:report=$TMP/slowest.txt,delay_us=20000" >out2.txt 2>&1; echo $?)
check "two sinks, one quick and one slow: exit 0 (rc $rc)" test "$rc" = 0
read -r qlines _ qpaused <quick.txt
read -r slines _ spaused <slowest.txt
check "... both got every line ($qlines, $slines)" test "$qlines $slines" = "$((6 * (N + 1))) $((6 * (N + 1)))"
check "... no write reached the slow one while it was over ($spaused)" test "$spaused" = 0
check "... nor the quick one ($qpaused)" test "$qpaused" = 0

rc=$(timeout 300 "$KILN" run p.yaml --plugin-path "$KILN_TEST_PLUGIN_DIR" --quiet \
    --executor "test-recorder:log=$TMP/rec3.log,close_work=true" >out3.txt 2>&1; echo $?)
check "close() with a job still running: exit 0 (rc $rc)" test "$rc" = 0
check "... the job's after ran, then the instance was destroyed" \
    test "$(awk '$1 ~ /^close|^destroy/ {print $1}' "$TMP/rec3.log" | tr '\n' ' ')" = "close close-work-after destroy "
check "... no sanitizer report" lacks_line out3.txt "Sanitizer"
finish
