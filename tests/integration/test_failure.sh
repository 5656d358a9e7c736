#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A failing step stops the build: exit 1, the reason on the console and in
# the report, running siblings CANCELLED and really killed, steps never
# started left QUEUED. allowFailure and allowExitCodes let the build go on.
source "$(dirname "$0")/lib.sh"

cat >fail.yaml <<EOF2
steps:
- id: sibling
  waitFor: ['-']
  script: $SLEEP 3600; echo sibling finished
- id: bad
  waitFor: ['-']
  script: sleep 0.3; echo about to fail; exit 3
- id: never
  script: echo never ran
finally:
- id: cleanup
  script: echo cleanup ran
EOF2
# The sibling sleeps an hour: kiln ending at all shows it did not wait for
# it (ctest's TIMEOUT would end a wait).
rc=$(run_kiln out.txt run fail.yaml --max-parallel 4 --kill-grace 1s --report r.json)
check "failing build exits 1, without waiting for the sibling's 1 h sleep" test "$rc" = 1
check "the sibling was stopped, not finished" lacks_line out.txt "sibling finished"
check "console shows the failure reason" has_line out.txt "[bad] FAILURE in"
check "console shows 'step exited with non-zero status: 3'" has_line out.txt "step exited with non-zero status: 3"
check "console shows the build failure" has_line out.txt 'FAILURE build'
check "report: build FAILURE" test "$(jget r.json 'j["status"]')" = FAILURE
check "report: statusDetail names the step" test "$(jget r.json 'j["statusDetail"]')" = 'build step 1 "exec" failed: step exited with non-zero status: 3'
check "report: bad FAILURE" test "$(status r.json bad)" = FAILURE
check "report: bad exit_code 3" test "$(field r.json bad exit_code)" = 3
check "report: bad reason" test "$(field r.json bad reason)" = "step exited with non-zero status: 3"
check "report: sibling CANCELLED" test "$(status r.json sibling)" = CANCELLED
check "report: never stays QUEUED" test "$(status r.json never)" = QUEUED
check "report: never has no timing" test "$(field r.json never timing)" = None
check "report: finally step ran after the failure" test "$(status r.json cleanup)" = SUCCESS
check "console: never printed nothing" lacks_line out.txt "never ran"
check "console: sibling never finished" lacks_line out.txt "sibling finished"
check "no sibling process survives" no_survivors

echo "# a failure in a deeper chain: later steps stay QUEUED, dependants do not start"
cat >chain.yaml <<'EOF2'
steps:
- id: one
  script: exit 1
- id: two
  script: echo two
- id: three
  waitFor: [two]
  script: echo three
EOF2
rc=$(run_kiln out.txt run chain.yaml --report r.json)
check "chain exits 1" test "$rc" = 1
check "chain: two QUEUED" test "$(status r.json two)" = QUEUED
check "chain: three QUEUED" test "$(status r.json three)" = QUEUED
check "chain: reason status 1" has_line out.txt "step exited with non-zero status: 1"

echo "# allowFailure and allowExitCodes"
cat >allow.yaml <<'EOF2'
steps:
- id: soft
  allowFailure: true
  script: echo soft fails; exit 1
- id: three
  allowExitCodes: [3]
  script: exit 3
- id: after
  script: echo after both
EOF2
rc=$(run_kiln out.txt run allow.yaml --report r.json)
check "allowFailure/allowExitCodes: build exits 0" test "$rc" = 0
check "report: build SUCCESS" test "$(jget r.json 'j["status"]')" = SUCCESS
check "report: soft is FAILURE but allowed" test "$(status r.json soft)/$(field r.json soft allowed_failure)" = FAILURE/True
check "report: three is FAILURE but allowed, exit 3" test "$(status r.json three)/$(field r.json three allowed_failure)/$(field r.json three exit_code)" = FAILURE/True/3
check "the step after ran" has_line out.txt "[after] after both"
cat >notallowed.yaml <<'EOF2'
steps:
- id: four
  allowExitCodes: [3]
  script: exit 4
EOF2
rc=$(run_kiln out.txt run notallowed.yaml --report r.json)
check "allowExitCodes [3] does not allow 4: exit 1" test "$rc" = 1
check "allowExitCodes [3] does not allow 4: reason" has_line out.txt "step exited with non-zero status: 4"
check "no allowed_failure on four" test "$(field r.json four allowed_failure)" = None

echo "# a program that cannot be run"
cat >missing.yaml <<'EOF2'
steps:
- id: nope
  args: [kiln-no-such-program-xyz]
EOF2
rc=$(run_kiln out.txt run missing.yaml --report r.json)
check "missing program: exit 1" test "$rc" = 1
check "missing program: says not found" has_line out.txt "cannot run 'kiln-no-such-program-xyz': not found"
check "missing program: step FAILURE" test "$(status r.json nope)" = FAILURE

finish
