#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Step and build timeouts: the step ends TIMEOUT, the build exits 1, and the
# whole process group goes: a grandchild, and a child that ignores SIGTERM
# (killed by SIGKILL after --kill-grace).
source "$(dirname "$0")/lib.sh"

cat >step.yaml <<EOF2
steps:
- id: slow
  timeout: 1s
  script: |
    (trap '' TERM; $SLEEP 3601) &
    sh -c '$SLEEP 3602' &
    trap '' TERM
    $SLEEP 3600
    echo slow finished
- id: after
  script: echo never
finally:
- id: fin
  script: echo finally after timeout
EOF2
# The step sleeps an hour: kiln ending at all shows it did not wait for the
# sleep (ctest's TIMEOUT would end a wait); 137 below shows the SIGKILL.
start=$(date +%s)
rc=$(run_kiln out.txt run step.yaml --kill-grace 1s --report r.json)
took=$(($(date +%s) - start))
check "step timeout: exit 1" test "$rc" = 1
check "step timeout: not before the 1 s timeout and 1 s grace (${took}s)" test "$took" -ge 1
check "step timeout: console says so" has_line out.txt "step timed out after 1.00s"
check "step timeout: TIMEOUT on the console" has_line out.txt "[slow] TIMEOUT in"
check "report: step TIMEOUT" test "$(status r.json slow)" = TIMEOUT
check "report: build TIMEOUT" test "$(jget r.json 'j["status"]')" = TIMEOUT
check "report: killed by SIGKILL (137)" test "$(field r.json slow exit_code)" = 137
check "report: after stays QUEUED" test "$(status r.json after)" = QUEUED
check "report: finally ran after a timeout" test "$(status r.json fin)" = SUCCESS
check "console: finally output" has_line out.txt "finally after timeout"
check "the step's group is gone (child ignoring TERM, grandchild)" no_survivors

echo "# build timeout"
cat >build.yaml <<EOF2
timeout: 1s
steps:
- id: long
  script: $SLEEP 3600
- id: next
  script: echo never
finally:
- id: fin
  script: echo finally after build timeout
EOF2
start=$(date +%s)
rc=$(run_kiln out.txt run build.yaml --kill-grace 1s --report r.json)
took=$(($(date +%s) - start))
check "build timeout: exit 1, without waiting for the 1 h sleep" test "$rc" = 1
check "build timeout: not before the 1 s timeout (${took}s)" test "$took" -ge 1
check "build timeout: console says so" has_line out.txt "build timed out after 1.00s"
check "report: build TIMEOUT" test "$(jget r.json 'j["status"]')" = TIMEOUT
check "report: statusDetail" test "$(jget r.json 'j["statusDetail"]')" = "build timed out after 1.00s"
check "report: the running step was stopped" test "$(status r.json long)" = CANCELLED
check "report: next QUEUED" test "$(status r.json next)" = QUEUED
check "report: finally ran" test "$(status r.json fin)" = SUCCESS
check "build timeout: nothing survives" no_survivors

echo "# a step that finishes within its timeout"
cat >fast.yaml <<'EOF2'
steps:
- id: quick
  timeout: 120s
  script: echo quick
EOF2
rc=$(run_kiln out.txt run fast.yaml --report r.json)
check "within timeout: exit 0" test "$rc" = 0
check "within timeout: SUCCESS" test "$(status r.json quick)" = SUCCESS

finish
