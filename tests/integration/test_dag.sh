#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# DAG semantics: a diamond's middle steps overlap, the default order (no
# waitFor = after every earlier step), waitFor: ['-'], --max-parallel 1,
# --only. Overlap is proved by handshakes (each middle step waits for a file
# the other writes), not by wall-clock guesses; order by report timestamps.
source "$(dirname "$0")/lib.sh"

# The diamond (b and c hand-shake through the workspace): tests/data/dag/.
cp "$KILN_SOURCE_DIR/tests/data/dag/diamond.yaml" .

echo "# diamond: b and c run at the same time"
rc=$(run_kiln out.txt run diamond.yaml --max-parallel 4 --report r.json)
check "diamond exits 0" test "$rc" = 0
diamond_checks r.json out.txt

echo "# --max-parallel 1 serializes"
cat >par.yaml <<'EOF2'
steps:
- id: p1
  waitFor: ['-']
  script: sleep 0.2
- id: p2
  waitFor: ['-']
  script: sleep 0.2
- id: p3
  waitFor: ['-']
  script: sleep 0.2
EOF2
rc=$(run_kiln out.txt run par.yaml --max-parallel 1 --report r.json)
check "max-parallel 1 exits 0" test "$rc" = 0
check "max-parallel 1: no two steps overlap" serial r.json
check "max-parallel 1: pipeline order among ready steps" before r.json p1 p2
check "max-parallel 1: p2 before p3" before r.json p2 p3
rc=$(run_kiln out.txt run par.yaml --max-parallel 3 --report r.json)
check "max-parallel 3: p1 and p3 overlap" overlap r.json p1 p3
rm -f b.started c.started
rc=$(run_kiln out.txt run diamond.yaml --max-parallel 1 --report r.json)
check "max-parallel 1: the diamond's handshake cannot complete (exit 1)" test "$rc" = 1

echo "# default order, and waitFor: ['-']"
cat >order.yaml <<'EOF2'
steps:
- id: first
  script: |
    for i in $(seq 1200); do [ -e dash.started ] && break; sleep 0.05; done
    sleep 0.2; touch first.done
- id: second
  waitFor: ['-']
  script: sleep 0.3; touch second.done
- id: third
  script: test -e first.done && test -e second.done && echo third saw both
- id: dash
  waitFor: ['-']
  script: touch dash.started
EOF2
rc=$(run_kiln out.txt run order.yaml --max-parallel 8 --report r.json)
check "order exits 0" test "$rc" = 0
check "no waitFor: third starts after first" before r.json first third
check "no waitFor: third starts after second (every earlier step)" before r.json second third
check "no waitFor: third saw both files" has_line out.txt "[third] third saw both"
check "waitFor ['-']: dash started while first was running" overlap r.json dash first
check "waitFor ['-']: dash did not wait for third" before r.json dash third
rc=$(run_kiln graph.txt graph order.yaml)
check "graph: third waits for first and second" has_line graph.txt "#2 third (exec) <- first, second"
check "graph: dash starts at once" has_line graph.txt "#3 dash (exec) <- start"

echo "# --only"
cat >only.yaml <<'EOF2'
steps:
- id: a
  script: echo a
- id: b
  waitFor: [a]
  script: echo b
- id: c
  waitFor: [a]
  script: echo c
- id: d
  waitFor: [b, c]
  script: echo d
- id: e
  script: echo e
EOF2
rc=$(run_kiln out.txt run only.yaml --only b --report r.json)
check "--only b exits 0" test "$rc" = 0
check "--only b: a ran (b needs it)" test "$(status r.json a)" = SUCCESS
check "--only b: b ran" test "$(status r.json b)" = SUCCESS
check "--only b: c SKIPPED" test "$(status r.json c)" = SKIPPED
check "--only b: d SKIPPED" test "$(status r.json d)" = SKIPPED
check "--only b: e SKIPPED" test "$(status r.json e)" = SKIPPED
check "--only b: c printed nothing" lacks_line out.txt "[c] c"
rc=$(run_kiln out.txt run only.yaml --only d --report r.json)
check "--only d: a b c d ran" test "$(status r.json a)$(status r.json b)$(status r.json c)$(status r.json d)" = SUCCESSSUCCESSSUCCESSSUCCESS
check "--only d: e SKIPPED" test "$(status r.json e)" = SKIPPED
rc=$(run_kiln out.txt run only.yaml --only e --report r.json)
check "--only e: everything before e ran (no waitFor)" test "$(status r.json d)" = SUCCESS
rc=$(run_kiln out.txt run only.yaml --only nope)
check "--only with an unknown id exits 2" test "$rc" = 2
check "--only with an unknown id says so" has_line out.txt '--only: no step with id "nope"'

finish
