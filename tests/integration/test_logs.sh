#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Logs: --log-dir gives one file per step; a million lines arrive whole and
# in order; a partial line shows on the console before its step ends;
# stderr reaches the log; --log-format cloudbuild prints Cloud Build's lines.
source "$(dirname "$0")/lib.sh"

echo "# one file per step, stdout and stderr, kiln's own messages"
cat >steps.yaml <<'EOF2'
steps:
- id: out
  name: ubuntu
  args: [sh, -c, 'echo to stdout']
- id: err
  script: echo to stderr >&2; echo also stdout
- script: echo no id
EOF2
rc=$(run_kiln out.txt run steps.yaml --log-dir logs)
check "log-dir: exit 0" test "$rc" = 0
check "log-dir: one file per step" test "$(cd logs && ls | tr '\n' ' ')" = "err.log out.log step-2.log "
check "log-dir: stdout line in out.log" has_line logs/out.log "to stdout"
check "log-dir: kiln's note about the image in out.log" has_line logs/out.log "kiln: image 'ubuntu' is not used: running sh on this machine"
check "log-dir: stderr line in err.log" has_line logs/err.log "to stderr"
check "log-dir: stdout line in err.log" has_line logs/err.log "also stdout"
check "log-dir: a step without id goes to step-N.log" has_line logs/step-2.log "no id"
check "log-dir: no line of another step" lacks_line logs/out.log "stderr"
check "log-dir: kiln says where the logs are" has_line out.txt "kiln: step logs are in logs/"

echo "# 1,000,000 lines, in order, none lost"
cat >big.yaml <<'EOF2'
steps:
- id: big
  args: [seq, '1', '1000000']
EOF2
seq 1 1000000 >want.txt
rc=$(run_kiln out.txt run big.yaml --log-dir logs)
check "big: exit 0" test "$rc" = 0
check "big: the log file is exactly seq's output" cmp -s want.txt logs/big.log
check "big: the console has every line" test "$(grep -c '^\[big\] [0-9]*$' out.txt)" = 1000000
grep '^\[big\] [0-9]*$' out.txt | sed 's/^\[big\] //' >console-big.txt
check "big: console lines in order" cmp -s want.txt console-big.txt
rc=$(run_kiln out.txt run big.yaml --log-dir logs --quiet)
check "big --quiet: the log is still complete" cmp -s want.txt logs/big.log
check "big --quiet: the console has no step output" test "$(grep -c '^\[big\] [0-9]*$' out.txt)" = 0

echo "# a partial line reaches the console before its step ends"
cat >partial.yaml <<'EOF2'
steps:
- id: part
  script: |
    printf 'partial-line-no-newline'
    for i in $(seq 1200); do [ -e release ] && break; sleep 0.05; done
    echo ' rest'
    test -e release
EOF2
# Through a pipe, as when kiln's output is piped into another program.
( "$KILN" run partial.yaml --log-dir logs 2>&1 | cat >out.txt ) &
pid=$!
partial_shown() { grep -qF "partial-line-no-newline" out.txt; }
check "partial: shown while the step still runs" wait_for 60 partial_shown
check "partial: the step had not ended yet" lacks_line out.txt "[part] SUCCESS"
touch release
wait "$pid" || true
check "partial: the line is completed on the console" has_line out.txt "[part] partial-line-no-newline rest"
check "partial: then the step succeeds" has_line out.txt "[part] SUCCESS"
check "partial: the log file has the whole line once" test "$(cat logs/part.log)" = "partial-line-no-newline rest"
check "partial: no blank line after the completed line" test "$(grep -c '^$' out.txt)" = 0

echo "# a line longer than kiln's 64 KiB line buffer"
cat >long.yaml <<'EOF2'
steps:
- id: long
  script: head -c 100000 /dev/zero | tr '\0' x; echo; echo next
EOF2
rc=$(run_kiln out.txt run long.yaml --log-dir logs)
check "long line: exit 0" test "$rc" = 0
check "long line: one line of 100000 in the log" test "$(awk '{print length($0)}' logs/long.log | tr '\n' ' ')" = "100000 4 "
check "long line: one console line of 100000 after the prefix" test "$(awk '/^\[long\] x/ {print length($0) - 7}' out.txt)" = 100000
check "long line: no blank line on the console" test "$(grep -c '^$' out.txt)" = 0
check "long line: the next line has its prefix" has_line out.txt "[long] next"

echo "# --log-format cloudbuild"
cat >cb.yaml <<'EOF2'
steps:
- id: hello
  name: ubuntu
  args: [echo, hi]
- name: ubuntu
  args: [echo, anonymous]
- id: boom
  name: gcr.io/cloud-builders/docker
  entrypoint: sh
  args: [-c, 'echo failing; exit 1']
EOF2
rc=$(run_kiln out.txt run cb.yaml --log-format cloudbuild)
check "cloudbuild: exit 1" test "$rc" = 1
check "cloudbuild: BUILD header" has_line out.txt "BUILD"
check "cloudbuild: Starting Step #0" has_line out.txt 'Starting Step #0 - "hello"'
check "cloudbuild: output line" has_line out.txt 'Step #0 - "hello": hi'
check "cloudbuild: Finished Step #0" has_line out.txt 'Finished Step #0 - "hello"'
check "cloudbuild: a step without id" has_line out.txt 'Step #1: anonymous'
check "cloudbuild: Starting Step #1 without id" grep -qx 'Starting Step #1' out.txt
check "cloudbuild: the failing step's output" has_line out.txt 'Step #2 - "boom": failing'
check "cloudbuild: ERROR line names the image" has_line out.txt 'ERROR: build step 2 "gcr.io/cloud-builders/docker" failed: step exited with non-zero status: 1'
check "cloudbuild: no kiln-format prefixes" lacks_line out.txt "[hello]"
cat >cb0.yaml <<'EOF2'
steps:
- name: ubuntu
  args: [sh, -c, 'exit 1']
EOF2
rc=$(run_kiln out.txt run cb0.yaml --log-format cloudbuild)
check "cloudbuild: step 0 failure in Cloud Build's words" has_line out.txt 'ERROR: build step 0 "ubuntu" failed: step exited with non-zero status: 1'
cat >ok.yaml <<'EOF2'
steps:
- id: fine
  args: [echo, fine]
EOF2
rc=$(run_kiln out.txt run ok.yaml --log-format cloudbuild)
check "cloudbuild: DONE on success" grep -qx DONE out.txt

finish
