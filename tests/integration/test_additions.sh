#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln's additions to Cloud Build: retry (limit, backoff, on_exit_codes),
# finally steps (after success, failure and timeout), step outputs through
# $KILN_OUTPUT and ${{ steps.ID.outputs.KEY }}.
source "$(dirname "$0")/lib.sh"

echo "# retry: fails twice, then succeeds"
cat >retry.yaml <<'EOF2'
steps:
- id: flaky
  retry: {limit: 2, backoff: 100ms}
  script: |
    n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count
    echo "attempt $n"
    [ "$n" -ge 3 ]
EOF2
rc=$(run_kiln out.txt run retry.yaml --report r.json)
check "retry: exit 0" test "$rc" = 0
check "retry: SUCCESS" test "$(status r.json flaky)" = SUCCESS
check "retry: attempts 3" test "$(field r.json flaky attempts)" = 3
check "retry: the counter says 3 runs" test "$(cat count)" = 3
check "retry: console announces the first retry" has_line out.txt "attempt 1 of 3 failed"
check "retry: console announces the second retry, with the doubled backoff" has_line out.txt "attempt 2 of 3 failed: step exited with non-zero status: 1; retrying in 0.20s"
check "retry: every attempt's output is shown" has_line out.txt "[flaky] attempt 3"

echo "# retry: the limit is reached"
rm -f count
cat >exhaust.yaml <<'EOF2'
steps:
- id: never_ok
  retry: {limit: 1, backoff: 50ms}
  script: n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count; exit 2
EOF2
rc=$(run_kiln out.txt run exhaust.yaml --report r.json)
check "retry exhausted: exit 1" test "$rc" = 1
check "retry exhausted: attempts 2" test "$(field r.json never_ok attempts)" = 2
check "retry exhausted: ran twice" test "$(cat count)" = 2
check "retry exhausted: reason" test "$(field r.json never_ok reason)" = "step exited with non-zero status: 2"

echo "# retry: on_exit_codes limits what is retried"
rm -f count
cat >codes.yaml <<'EOF2'
steps:
- id: picky
  retry: {limit: 5, backoff: 50ms, on_exit_codes: [75]}
  script: |
    n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count
    if [ "$n" -ge 2 ]; then exit 4; fi
    exit 75
EOF2
rc=$(run_kiln out.txt run codes.yaml --report r.json)
check "on_exit_codes: exit 1" test "$rc" = 1
check "on_exit_codes: 75 retried, 4 not: attempts 2" test "$(field r.json picky attempts)" = 2
check "on_exit_codes: exit code 4" test "$(field r.json picky exit_code)" = 4
check "on_exit_codes: ran twice" test "$(cat count)" = 2

echo "# a sibling's failure ends a step waiting to be retried"
rm -f count
cat >backoff.yaml <<'EOF2'
steps:
- id: flaky
  waitFor: ['-']
  retry: {limit: 3, backoff: 3600s}
  script: echo attempt >> attempts.txt; exit 1
- id: bad
  waitFor: ['-']
  script: sleep 0.5; exit 2
EOF2
# The backoff is an hour: kiln ending at all shows it did not wait it out
# (ctest's TIMEOUT would end a wait).
rc=$(run_kiln out.txt run backoff.yaml --max-parallel 4 --report r.json)
check "failure during backoff: exit 1, without waiting out the 1 h backoff" test "$rc" = 1
check "failure during backoff: flaky CANCELLED" test "$(status r.json flaky)" = CANCELLED
check "failure during backoff: no second attempt" test "$(wc -l <attempts.txt)" = 1
check "failure during backoff: the build failed because of bad" test "$(jget r.json 'j["statusDetail"]')" = 'build step 1 "exec" failed: step exited with non-zero status: 2'

echo "# retry does not leave \$KILN_OUTPUT files behind"
rm -f count
mkdir tmpdir
rc=$(TMPDIR=$TMP/tmpdir run_kiln out.txt run retry.yaml)
check "retry with TMPDIR: exit 0" test "$rc" = 0
check "no kiln-output-* file left in TMPDIR" test -z "$(ls tmpdir)"

echo "# finally: after success, failure and timeout"
for case in success failure timeout; do
    case $case in
    success) body='echo main ok'; extra='' ;;
    failure) body='exit 1'; extra='' ;;
    timeout) body="$SLEEP 30"; extra='  timeout: 1s' ;;
    esac
    cat >fin-$case.yaml <<EOF2
steps:
- id: main
$extra
  script: $body
finally:
- id: tidy
  script: echo "tidy after $case"; echo ran > tidy-$case.txt
- id: last
  script: echo last
EOF2
    rc=$(run_kiln out.txt run fin-$case.yaml --kill-grace 1s --report r.json)
    want=1; [ "$case" = success ] && want=0
    check "finally/$case: exit $want" test "$rc" = "$want"
    check "finally/$case: tidy ran" test -e tidy-$case.txt
    check "finally/$case: tidy SUCCESS in the report" test "$(status r.json tidy)" = SUCCESS
    check "finally/$case: finally steps run in order (last after tidy)" test "$(grep -n 'tidy after' out.txt | cut -d: -f1)" -lt "$(grep -n '\[last\] last' out.txt | cut -d: -f1)"
done
check "finally/timeout: main TIMEOUT" test "$(status r.json main)" = TIMEOUT

echo "# a failing finally step fails a successful build"
cat >finfail.yaml <<'EOF2'
steps:
- id: main
  script: echo ok
finally:
- id: broken
  script: exit 5
EOF2
rc=$(run_kiln out.txt run finfail.yaml --report r.json)
check "failing finally: exit 1" test "$rc" = 1
check "failing finally: statusDetail" test "$(jget r.json 'j["statusDetail"]')" = 'finally step 0 "broken" failed: step exited with non-zero status: 5'

echo "# step outputs"
cat >outputs.yaml <<'EOF2'
steps:
- id: produce
  script: |
    echo "greeting=hello world" >> "$KILN_OUTPUT"
    echo "count=42" >> "$KILN_OUTPUT"
- id: consume
  waitFor: [produce]
  args: [sh, -c, 'echo "got ${{ steps.produce.outputs.greeting }} and ${{steps.produce.outputs.count}}"']
  env: ['N=${{ steps.produce.outputs.count }}']
- id: envcheck
  waitFor: [consume]
  args: [sh, -c, 'echo "N in env: $$N"']
  env: ['N=${{ steps.produce.outputs.count }}']
EOF2
rc=$(run_kiln out.txt run outputs.yaml --report r.json)
check "outputs: exit 0" test "$rc" = 0
check "outputs: consume saw both values in args" has_line out.txt "[consume] got hello world and 42"
check "outputs: env entries are expanded too" has_line out.txt "[envcheck] N in env: 42"
check "outputs: in the report" test "$(jget r.json 'j["steps"][0]["outputs"]')" = "{'greeting': 'hello world', 'count': '42'}"

cat >outbad.yaml <<'EOF2'
steps:
- id: produce
  waitFor: ['-']
  script: echo "k=v" >> "$KILN_OUTPUT"
- id: consume
  waitFor: ['-']
  args: [echo, '${{ steps.produce.outputs.k }}']
EOF2
rc=$(run_kiln out.txt validate outbad.yaml)
check "output of a step not waited for: validate exits 2" test "$rc" = 2
check "output of a step not waited for: the message, with position" has_line out.txt 'outbad.yaml:7:16: error: build step #1 - "consume": reads an output of step "produce", which it does not wait for; add "produce" to its waitFor'
rc=$(run_kiln out.txt run outbad.yaml)
check "output of a step not waited for: run exits 2, nothing runs" test "$rc" = 2
check "output of a step not waited for: nothing ran" lacks_line out.txt "starting"

cat >outmissing.yaml <<'EOF2'
steps:
- id: produce
  script: echo "k=v" >> "$KILN_OUTPUT"
- id: consume
  args: [echo, '${{ steps.produce.outputs.nope }}']
EOF2
rc=$(run_kiln out.txt run outmissing.yaml --report r.json)
check "missing output at run time: exit 1" test "$rc" = 1
check "missing output at run time: the message" has_line out.txt 'step "produce" has no output "nope"'
check "missing output at run time: consume FAILURE" test "$(status r.json consume)" = FAILURE

finish
