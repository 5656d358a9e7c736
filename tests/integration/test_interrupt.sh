#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ctrl-C: kiln in the background on a long pipeline, SIGINT, exit 130,
# running steps CANCELLED, the finally steps run, no child survives; a second
# SIGINT kills at once instead of waiting out the grace period.
source "$(dirname "$0")/lib.sh"

cat >long.yaml <<EOF2
steps:
- id: a
  waitFor: ['-']
  script: touch a.started; $SLEEP 3600
- id: b
  waitFor: ['-']
  script: touch b.started; trap '' TERM INT; $SLEEP 3600
- id: c
  script: echo never
finally:
- id: fin
  script: echo finally ran > fin.txt
EOF2

both_started() { test -e a.started && test -e b.started; }
# setsid: kiln is not this shell's job, so the SIGINT is the only one it sees
setsid "$KILN" run long.yaml --max-parallel 4 --kill-grace 1s --report r.json >out.txt 2>&1 &
pid=$!
check "both steps started" wait_for 120 both_started
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "SIGINT: exit 130" test "$rc" = 130
check "SIGINT: console says the build was interrupted" has_line out.txt "cancelling the build: interrupted (SIGINT)"
check "report: build CANCELLED" test "$(jget r.json 'j["status"]')" = CANCELLED
check "report: a CANCELLED" test "$(status r.json a)" = CANCELLED
check "report: b (ignores TERM) CANCELLED" test "$(status r.json b)" = CANCELLED
check "report: c QUEUED" test "$(status r.json c)" = QUEUED
check "report: finally ran" test "$(status r.json fin)" = SUCCESS
check "finally wrote its file" has_line fin.txt "finally ran"
check "SIGINT: no child survives" no_survivors

echo "# a second SIGINT does not wait for the grace period"
rm -f a.started b.started r.json
# The grace is an hour: kiln ending at all shows the second SIGINT did not
# wait for it (ctest's TIMEOUT would end a wait).
setsid "$KILN" run long.yaml --max-parallel 4 --kill-grace 3600s --report r.json >out.txt 2>&1 &
pid=$!
check "both steps started again" wait_for 120 both_started
kill -INT "$pid"
# The second SIGINT after kiln has acted on the first (two at once may be one)
cancelling() { grep -qF "cancelling the build: interrupted (SIGINT)" out.txt; }
check "first SIGINT: the build is being cancelled" wait_for 120 cancelling
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "second SIGINT: exit 130, without waiting out the 1 h grace" test "$rc" = 130
check "second SIGINT: no child survives" no_survivors

echo "# SIGTERM"
rm -f a.started b.started r.json
setsid "$KILN" run long.yaml --max-parallel 4 --kill-grace 1s --report r.json >out.txt 2>&1 &
pid=$!
check "steps started for SIGTERM" wait_for 120 both_started
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
check "SIGTERM: exit 143" test "$rc" = 143
check "SIGTERM: report CANCELLED" test "$(jget r.json 'j["status"]')" = CANCELLED
check "SIGTERM: no child survives" no_survivors

echo "# SIGINT while a step waits to be retried"
cat >retry.yaml <<'EOF2'
steps:
- id: flaky
  retry: {limit: 3, backoff: 3600s}
  script: echo attempt >> attempts.txt; exit 1
finally:
- id: fin
  script: echo finally ran
EOF2
setsid "$KILN" run retry.yaml --kill-grace 1s --report r.json >out.txt 2>&1 &
pid=$!
retry_announced() { grep -qF "retrying in 1h00m" out.txt; }
check "the retry is announced" wait_for 120 retry_announced
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
check "SIGINT in backoff: exit 130, without waiting out the 1 h backoff" test "$rc" = 130
check "SIGINT in backoff: no second attempt ran" test "$(wc -l <attempts.txt)" = 1
check "SIGINT in backoff: step CANCELLED" test "$(status r.json flaky)" = CANCELLED
check "SIGINT in backoff: finally ran" test "$(status r.json fin)" = SUCCESS

finish
