#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A step the host has to end itself (ABI 1.9, kiln_step_ops.abandon): its
# process left a child in a session of its own that holds the step's output
# open, so after the timeout, SIGTERM, --kill-grace and SIGKILL its end is
# never reported, and kiln ends the step without the plugin. The user sees
# the step end as before ("did not complete step ... after cancel"), and the
# plugin is told: exec removes the temporary file of a #! script (also when
# the step is retried), git-checkout the file holding the token's
# Authorization header, kedro-train its logging configuration; and
# submit-sub-build is abandoned while its sub-build still runs. Under ASan
# (LeakSanitizer) a leak of what the plugins kept for the step fails kiln's
# exit code, which every case checks (tests/integration/test_abandon_deploy.sh
# has the deploy steps).
source "$(dirname "$0")/lib.sh"
# ASan's exit code for a leak is 1 by default: the very exit code of these
# failed builds. 23 makes a leak show.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:exitcode=23"

# The plugins write their temporary files under $TMPDIR: one of our own, so
# that what is left there is theirs.
export TMPDIR=$TMP/tmpfiles
mkdir -p "$TMPDIR"
leftovers() { find "$TMPDIR" -mindepth 1 -maxdepth 1 | sort; }

echo "# a #! script whose child escapes its process group"
cat >script.yaml <<EOF2
steps:
- id: hang
  timeout: 1s
  script: |
    #!/bin/sh
    echo "script file: \$0"
    setsid sh -c 'touch $TMP/escaped1; exec $SLEEP 3600' &
    while [ ! -e $TMP/escaped1 ]; do sleep 0.05; done
    echo "the child left the group"
- id: after
  script: echo never
finally:
- id: fin
  script: echo finally ran
EOF2
rc=$(run_kiln out.txt run script.yaml --kill-grace 1s --report r.json)
cat out.txt
script_file=$(sed -n 's/^\[hang\] script file: //p' out.txt)
check "exit 1" test "$rc" = 1
check "the script ran from a file under \$TMPDIR" test "${script_file#"$TMPDIR"/kiln-script-}" != "$script_file"
check "the child did leave the group" has_line out.txt "[hang] the child left the group"
check "console: the step timed out" has_line out.txt "[hang] error: step timed out after 1.00s"
check "console: kiln ended it for the plugin (unchanged line)" \
    has_line out.txt "[hang] error: plugin 'exec' did not complete step 'hang' after cancel"
check "console: TIMEOUT with the reason" has_line out.txt "the plugin did not stop after cancel"
check "report: step TIMEOUT" test "$(status r.json hang)" = TIMEOUT
check "report: the next step never ran" test "$(status r.json after)" = QUEUED
check "finally still ran" test "$(status r.json fin)" = SUCCESS
check "the script file is removed" test ! -e "$script_file"
check "nothing left in \$TMPDIR" test -z "$(leftovers)"
check "the escaped child was killed at the end of the build" no_survivors

echo "# a plain script (no file) and a retry after an abandoned attempt"
cat >retry.yaml <<EOF2
steps:
- id: hang
  timeout: 1s
  retry: {limit: 1, backoff: 10ms}
  script: |
    m=$TMP/escaped2-\$\$
    setsid sh -c "touch \$m; exec $SLEEP 3600" &
    while [ ! -e "\$m" ]; do sleep 0.05; done
    echo attempt
EOF2
rc=$(run_kiln out2.txt run retry.yaml --kill-grace 1s --report r2.json)
cat out2.txt
check "retry: exit 1" test "$rc" = 1
check "retry: both attempts ran" test "$(count_lines out2.txt "[hang] attempt")" = 2
check "retry: the first attempt was retried after kiln ended it" has_line out2.txt "attempt 1 of 2 timed out"
check "retry: report TIMEOUT" test "$(status r2.json hang)" = TIMEOUT
check "retry: nothing left in \$TMPDIR" test -z "$(leftovers)"
check "retry: no survivors" no_survivors

echo "# git-checkout: git's ssh leaves a child holding the step's stderr"
if command -v git >/dev/null; then
    cat >fakessh <<EOF2
#!/bin/sh
setsid sh -c 'touch $TMP/escaped3; exec $SLEEP 3600' &
while [ ! -e $TMP/escaped3 ]; do sleep 0.05; done
exec $SLEEP 3600
EOF2
    chmod +x fakessh
    printf 'not-a-real-token\n' >token
    cat >git.yaml <<EOF2
steps:
- id: fetch
  uses: git-checkout
  timeout: 1s
  env: ['GIT_SSH_COMMAND=$TMP/fakessh', 'GIT_SSH_VARIANT=simple']
  with: {repo: 'ssh://git.invalid/x.git', token-file: '$TMP/token'}
EOF2
    rc=$(run_kiln out3.txt run git.yaml --kill-grace 1s --report r3.json)
    cat out3.txt
    check "git: exit 1" test "$rc" = 1
    check "git: the ssh command ran and its child escaped" test -e "$TMP/escaped3"
    check "git: kiln ended it for the plugin" \
        has_line out3.txt "plugin 'git-checkout' did not complete step 'fetch' after cancel"
    check "git: report TIMEOUT" test "$(status r3.json fetch)" = TIMEOUT
    check "git: the credentials file is removed (nothing left in \$TMPDIR)" test -z "$(leftovers)"
    check "git: no survivors" no_survivors
else
    echo "skip - git is not installed (scripts/deps.d has it for CI)"
fi
echo "# kedro-train: kedro leaves a child holding the step's output"
cp -r "$KILN_SOURCE_DIR/tests/data/kedro_project" kproj
cat >fakekedro <<EOF2
#!/bin/sh
setsid sh -c 'touch $TMP/escaped4; exec $SLEEP 3600' &
while [ ! -e $TMP/escaped4 ]; do sleep 0.05; done
echo "kedro: pretending to train"
EOF2
chmod +x fakekedro
cat >kedro.yaml <<EOF2
steps:
- id: train
  uses: kedro-train
  timeout: 1s
  with: {project: ./kproj, command: $TMP/fakekedro}
EOF2
rc=$(run_kiln out4.txt run kedro.yaml --kill-grace 1s --report r4.json)
cat out4.txt
check "kedro: exit 1" test "$rc" = 1
check "kedro: the command ran and its child escaped" has_line out4.txt "kedro: pretending to train"
check "kedro: kiln ended it for the plugin" \
    has_line out4.txt "plugin 'kedro-train' did not complete step 'train' after cancel"
check "kedro: report TIMEOUT" test "$(status r4.json train)" = TIMEOUT
check "kedro: its logging configuration is removed (nothing left in \$TMPDIR)" test -z "$(leftovers)"
check "kedro: no survivors" no_survivors
echo "# submit-sub-build: the parent step is abandoned while its sub-build runs its finally step"
# The parent's timeout cancels the sub-build; the sub-build's finally step
# takes 6 s, longer than --kill-grace (1 s) and the host's 2 s, so the host
# ends the parent step first. The sub-build goes on to its end; its result
# must not reach the abandoned step.
cat >child.yaml <<EOF2
steps:
- id: work
  script: |
    echo child started
    exec $SLEEP 3600
finally:
- id: cleanup
  script: |
    echo cleanup started
    $SLEEP 6
    echo cleanup done
EOF2
cat >parent.yaml <<EOF2
steps:
- {id: sub, uses: submit-sub-build, timeout: 2s, with: {config: child.yaml}}
EOF2
rc=$(run_kiln out5.txt run parent.yaml --kill-grace 1s --report r5.json)
cat out5.txt
check "sub-build: exit 1 (exit $rc)" test "$rc" = 1
check "sub-build: the child's step ran" grep -qE '^\[[0-9a-f]{8}/work\] child started' out5.txt
check "sub-build: kiln ended the parent step for the plugin" \
    has_line out5.txt "[sub] error: plugin 'submit-sub-build' did not complete step 'sub' after cancel"
check "sub-build: ...while the sub-build still ran (its cleanup ended later)" python3 -c 'import sys
t=open(sys.argv[1]).read()
a=t.find("did not complete step \x27sub\x27"); b=t.find("cleanup done")
assert 0 <= a < b, (a, b)' out5.txt
check "sub-build: report: the parent step TIMEOUT, the plugin did not stop" \
    test "$(status r5.json sub)/$(field r5.json sub reason)" = "TIMEOUT/the plugin did not stop after cancel"
check "sub-build: report: the sub-build CANCELLED, its finally step ran to its end" \
    test "$(jget r5.json 'j["steps"][0]["builds"][0]["status"]+"/"+j["steps"][0]["builds"][0]["finally"][0]["status"]')" = CANCELLED/SUCCESS
check "sub-build: no survivors" no_survivors
finish
