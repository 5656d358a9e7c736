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
  script: touch a.started; $SLEEP 30
- id: b
  waitFor: ['-']
  script: touch b.started; trap '' TERM INT; $SLEEP 30
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
check "both steps started" wait_for 20 both_started
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
setsid "$KILN" run long.yaml --max-parallel 4 --kill-grace 20s --report r.json >out.txt 2>&1 &
pid=$!
check "both steps started again" wait_for 20 both_started
kill -INT "$pid"
sleep 0.3
start=$(date +%s)
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
took=$(($(date +%s) - start))
check "second SIGINT: exit 130" test "$rc" = 130
check "second SIGINT: ends long before the 20 s grace (${took}s)" test "$took" -lt 10
check "second SIGINT: no child survives" no_survivors

echo "# SIGTERM"
rm -f a.started b.started r.json
setsid "$KILN" run long.yaml --max-parallel 4 --kill-grace 1s --report r.json >out.txt 2>&1 &
pid=$!
check "steps started for SIGTERM" wait_for 20 both_started
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
  retry: {limit: 3, backoff: 20s}
  script: echo attempt >> attempts.txt; exit 1
finally:
- id: fin
  script: echo finally ran
EOF2
setsid "$KILN" run retry.yaml --kill-grace 1s --report r.json >out.txt 2>&1 &
pid=$!
retry_announced() { grep -qF "retrying in 20.00s" out.txt; }
check "the retry is announced" wait_for 20 retry_announced
start=$(date +%s)
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
took=$(($(date +%s) - start))
check "SIGINT in backoff: exit 130" test "$rc" = 130
check "SIGINT in backoff: does not wait out the 20 s backoff (${took}s)" test "$took" -lt 10
check "SIGINT in backoff: no second attempt ran" test "$(wc -l <attempts.txt)" = 1
check "SIGINT in backoff: step CANCELLED" test "$(status r.json flaky)" = CANCELLED
check "SIGINT in backoff: finally ran" test "$(status r.json fin)" = SUCCESS

finish
