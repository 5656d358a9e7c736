#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Plugin loading: the test-only plugins of tests/plugins/ (built into
# $KILN_TEST_PLUGIN_DIR) are refused with one clear line each, and the good
# one, test-echo, runs through the host services (timer, partial output,
# stderr, set_output, queue_work + post from a thread, progress, cancel).
source "$(dirname "$0")/lib.sh"
: "${KILN_TEST_PLUGIN_DIR:?}"
TP=$KILN_TEST_PLUGIN_DIR

cat >refused.yaml <<'EOF2'
steps:
- id: abi
  uses: bad-abi
- id: minor
  uses: newer-minor
- id: entry
  uses: no-entry
- id: named
  uses: wrong-name
- id: slot
  uses: reserved-slot
- id: good
  uses: test-echo
  with: {message: fine}
EOF2
rc=$(run_kiln v.txt validate refused.yaml --plugin-path "$TP")
check "refusals: validate exits 2" test "$rc" = 2
check "refusals: no crash (exit code is not a signal)" test "$rc" -lt 128
check "wrong ABI major" has_line v.txt "refused.yaml:3:9: error: build step #0 - \"abi\": refusing plugin '$TP/kiln-step-bad-abi.so': it was built for plugin ABI 2.0, and this kiln supports 1.0 to 1."
check "wrong ABI major: says what to do" has_line v.txt "rebuild it against this kiln's SDK"
# The test plugin claims the host's minor + 7, whatever the host's is.
minor=$(sed -n 's/^#define KILN_ABI_MINOR \([0-9]*\)$/\1/p' "$KILN_SOURCE_DIR/sdk/include/kiln/version.h")
check "newer ABI minor" has_line v.txt "refusing plugin '$TP/kiln-step-newer-minor.so': it was built for plugin ABI 1.$((minor + 7)), and this kiln supports 1.0 to 1.$minor"
check "no entry symbol" has_line v.txt "refused.yaml:7:9: error: build step #2 - \"entry\": refusing plugin '$TP/kiln-step-no-entry.so': it has no entry point kiln_plugin_entry_v1() (is it a kiln plugin?)"
check "name differs from the file name" has_line v.txt "refusing plugin '$TP/kiln-step-wrong-name.so': it calls itself 'renamed' but the file name says 'wrong-name'"
check "reserved slot set" has_line v.txt "refusing plugin '$TP/kiln-step-reserved-slot.so': its reserved descriptor slots are not NULL"
check "one line per refusal, 5 in all" test "$(grep -c 'refusing plugin' v.txt)" = 5
check "the good plugin is not refused" lacks_line v.txt "test-echo.so"
check "refusals: counted" has_line v.txt "kiln: refused.yaml: 5 errors; nothing was run"
rc=$(run_kiln out.txt run refused.yaml --plugin-path "$TP")
check "refusals: run exits 2" test "$rc" = 2
check "refusals: nothing ran" lacks_line out.txt "starting"

echo "# kiln plugins shows refused plugins with their reason"
rc=$(run_kiln p.txt plugins --plugin-path "$TP")
check "plugins with refusals: exit 0, no crash" test "$rc" = 0
check "plugins: the good test plugin listed" grep -qE '^test-echo +step +0\.0\.1 +test plugin' p.txt
check "plugins: a refused one with its reason" grep -qE "^bad-abi +step +- +refusing plugin .*plugin ABI 2\.0" p.txt
rc=$(run_kiln pj.txt plugins --plugin-path "$TP" --json)
check "plugins --json: error field for a refused plugin" test "$(jget pj.txt '[p.get("error","")[:16] for p in j if p["name"]=="no-entry"][0]')" = "refusing plugin "
rc=$(run_kiln p.txt plugins test-echo --plugin-path "$TP")
check "plugins test-echo: its options" has_line p.txt "message          string           required."
rc=$(run_kiln p.txt plugins bad-abi --plugin-path "$TP")
check "plugins bad-abi: exit 2" test "$rc" = 2
check "plugins bad-abi: the reason" has_line p.txt "it was built for plugin ABI 2.0"

echo "# test-echo: the host services"
cat >echo.yaml <<'EOF2'
steps:
- id: echo
  uses: test-echo
  with: {message: hello from a plugin, key: greeting}
- id: use
  args: [echo, 'got ${{ steps.echo.outputs.greeting }}']
EOF2
rc=$(run_kiln out.txt run echo.yaml --plugin-path "$TP" --log-dir logs --report r.json)
check "test-echo: exit 0" test "$rc" = 0
check "test-echo: SUCCESS" test "$(status r.json echo)" = SUCCESS
check "test-echo: step_output line" has_line out.txt "[echo] test-echo: hello from a plugin"
check "test-echo: the partial line completed by the timer" has_line out.txt "[echo] partial completed"
check "test-echo: stderr through step_output" has_line logs/echo.log "test-echo: on stderr"
check "test-echo: the worker's result" has_line out.txt "[echo] test-echo: sum=500500"
check "test-echo: its log message" has_line logs/echo.log "kiln: test-echo starting in $TMP"
check "test-echo: output set from a post() off a worker thread" test "$(jget r.json 'j["steps"][0]["outputs"]["greeting"]')" = "hello from a plugin"
check "test-echo: the output reached the next step" has_line out.txt "[use] got hello from a plugin"
check "test-echo: progress in the report" test "$(jget r.json 'j["steps"][0]["progress"]')" = "{'done': 3, 'total': 3, 'what': 'done'}"
check "test-echo: log file in order" test "$(grep -v '^kiln:' logs/echo.log | grep -v stderr | tr '\n' '|')" = "test-echo: hello from a plugin|partial completed|test-echo: sum=500500|"

cat >echofail.yaml <<'EOF2'
steps:
- id: echo
  uses: test-echo
  with: {message: failing, exit: 7}
EOF2
rc=$(run_kiln out.txt run echofail.yaml --plugin-path "$TP" --report r.json)
check "test-echo exit 7: build exits 1" test "$rc" = 1
check "test-echo exit 7: the plugin's reason" test "$(field r.json echo reason)" = "test-echo was asked to fail"
check "test-echo exit 7: exit code" test "$(field r.json echo exit_code)" = 7

echo "# test-echo: cancel() when a sibling fails"
cat >echocancel.yaml <<'EOF2'
steps:
- id: echo
  uses: test-echo
  waitFor: ['-']
  with: {message: waiting, delay: 3600s}
- id: bad
  waitFor: ['-']
  script: sleep 0.3; exit 1
EOF2
# The delay is an hour: kiln ending at all shows cancel() ended the step
# (ctest's TIMEOUT would end a wait).
rc=$(run_kiln out.txt run echocancel.yaml --plugin-path "$TP" --report r.json --max-parallel 4)
check "cancel: exit 1, without waiting out the 1 h delay" test "$rc" = 1
check "cancel: test-echo CANCELLED" test "$(status r.json echo)" = CANCELLED
check "cancel: the partial line was flushed" has_line out.txt "[echo] partial"

echo "# option errors are found by validate"
cat >echobad.yaml <<'EOF2'
steps:
- id: echo
  uses: test-echo
  with: {mesage: typo, exit: 300}
EOF2
rc=$(run_kiln v.txt validate echobad.yaml --plugin-path "$TP")
check "bad options: exit 2" test "$rc" = 2
check "bad options: the missing required option" grep -q 'message' v.txt
check "bad options: 3 errors (typo, missing, out of range)" has_line v.txt "3 errors"

finish
