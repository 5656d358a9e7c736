#!/usr/bin/env bash
# Cloud Build volumes: a directory per name, mounted at each step's path in a
# mount namespace of the step's own; other steps and this machine do not see
# it there, the workspace stays the machine's, nothing is left behind.
source "$(dirname "$0")/lib.sh"

# kiln's temporary files (and the volumes) go here, so leftovers are seen.
export TMPDIR=$TMP/tmp
mkdir -p "$TMPDIR" ws
cd ws
leftovers() { find "$TMPDIR" -maxdepth 1 -name 'kiln-volumes-*' | grep -q .; }
ROOTDIR=/kiln-vol-$MARK   # a path that does not exist on this machine

# 1. cloud-build-local's own volume test, unchanged (the repository's copy,
# tests/data/cloudbuild/, which says where it comes from).
CORPUS=$KILN_SOURCE_DIR/tests/data/cloudbuild/GoogleCloudPlatform__cloud-build-local__integration_tests__cloudbuild_volumes.yaml
rc=$(run_kiln out run "$CORPUS" --log-dir logs --report r.json)
check "corpus volumes file: exit 0" test "$rc" = 0
check "step 1 reads what step 0 wrote to /foo" test "$(cat logs/step-1.log 2>/dev/null | tail -1)" = "some stuff"
check "step 2 reads it at /bar (same volume, other path)" grep -qx "some stuff" logs/step-2.log
check "step 3 (no volume) does not see /foo/stuff" grep -qx "1" logs/step-3.log
check "/foo was never made on this machine" test ! -e /foo
check "the volume directories are removed after the build" eval '! leftovers'

# 2. Global and step volumes, parallel steps, paths under missing and
# existing parents, the workspace and $KILN_OUTPUT as usual.
cat > many.yaml <<Y
options:
  volumes:
  - {name: global, path: $ROOTDIR/global}
steps:
- id: w1
  name: ubuntu
  entrypoint: bash
  args: ['-c', 'echo one > $ROOTDIR/deep/a/b/f1; echo g > $ROOTDIR/global/g; touch /new-$MARK; echo ws > ws-file; echo k=v1 >> \$\$KILN_OUTPUT']
  volumes: [{name: cache, path: $ROOTDIR/deep/a/b}]
  waitFor: ['-']
- id: w2
  name: ubuntu
  entrypoint: bash
  args: ['-c', 'echo two > /usr/kiln-$MARK/f2; ls /usr/bin/env >/dev/null && echo usr-ok']
  volumes: [{name: cache, path: /usr/kiln-$MARK}]
  waitFor: ['-']
- id: read
  name: ubuntu
  dir: $ROOTDIR/deep/a/b
  entrypoint: bash
  args: ['-c', 'cat f1 f2 $ROOTDIR/global/g; pwd; cat $TMP/ws/ws-file; echo \${{ steps.w1.outputs.k }}']
  volumes: [{name: cache, path: $ROOTDIR/deep/a/b}]
finally:
- id: fin
  name: ubuntu
  args: ['cat', '$ROOTDIR/global/g']
Y
rc=$(run_kiln out run many.yaml --log-dir logs2 --report r2.json)
check "global + step volumes: exit 0" test "$rc" = 0
check "a step sees what two others wrote to the volume at other paths" \
    test "$(grep -v '^kiln:' logs2/read.log 2>/dev/null | head -3 | tr '\n' ' ')" = "one two g "
check "dir: inside a volume is the working directory" grep -qx "$ROOTDIR/deep/a/b" logs2/read.log
check "the workspace is this machine's directory (a step's file is there)" test "$(cat ws-file)" = ws
check "...and other volume steps see it" grep -qx ws logs2/read.log
check "\$KILN_OUTPUT works in a volume step" grep -qx v1 logs2/read.log
check "a volume under an existing directory (/usr) leaves the rest of it visible" grep -qx usr-ok logs2/w2.log
check "finally steps get the global volumes" grep -qx g logs2/fin.log
check "nothing was written to this machine's / or /usr" test ! -e "/new-$MARK" -a ! -e "/usr/kiln-$MARK" -a ! -e "$ROOTDIR"
check "no leftovers" eval '! leftovers'

# A tool one step installs into a volume on the next step's PATH.
cat > tool.yaml <<Y
steps:
- {name: ubuntu, entrypoint: bash, args: ['-c', 'printf "#!/bin/sh\\necho tool-ran\\n" > /opt/kiln-$MARK/bin/mytool-$MARK; chmod +x /opt/kiln-$MARK/bin/mytool-$MARK'], volumes: [{name: tools, path: /opt/kiln-$MARK/bin}]}
- {name: ubuntu, args: [mytool-$MARK], env: ['PATH=/opt/kiln-$MARK/bin:/usr/bin:/bin'], volumes: [{name: tools, path: /opt/kiln-$MARK/bin}]}
Y
rc=$(run_kiln out-tool run tool.yaml)
check "a program found on PATH only inside a volume runs" test "$rc" = 0
check "...and prints" grep -q "tool-ran" out-tool

# 3. A working directory missing in its volume: the usual error, saying so.
cat > nodir.yaml <<Y
steps:
- {name: ubuntu, args: ['true'], volumes: [{name: vv, path: /vv-$MARK}]}
- {name: ubuntu, args: ['true'], dir: /vv-$MARK/nope, volumes: [{name: vv, path: /vv-$MARK}]}
Y
rc=$(run_kiln out3 run nodir.yaml)
check "dir missing in its volume: build fails" test "$rc" = 1
check "...saying where" grep -qE "nodir.yaml:3:[0-9]+: error: build step #1: working directory '/vv-$MARK/nope' does not exist in its volume" out3

# 4. A program that does not exist, and a step that times out.
cat > fail.yaml <<Y
steps:
- {id: missing, name: ubuntu, args: [no-such-program-$MARK], volumes: [{name: vv, path: /vv-$MARK}], allowFailure: true}
- {id: slow, name: ubuntu, args: ['$SLEEP', '30'], timeout: 1s, volumes: [{name: vv, path: /vv-$MARK}]}
Y
rc=$(run_kiln out run fail.yaml --kill-grace 1s --report r4.json)
check "missing program in a volume step: FAILURE, as without volumes" test "$(status r4.json missing)" = FAILURE
check "...with the same reason" grep -q "no-such-program-$MARK.*not found\|not found.*no-such-program-$MARK" <<<"$(field r4.json missing reason) $(cat out)"
check "timeout in a volume step: TIMEOUT" test "$(status r4.json slow)" = TIMEOUT
check "...and its process is gone" no_survivors
check "no leftovers after a failed build" eval '! leftovers'

# 5. Cloud Build's checks, at the volume's position.
cat > bad.yaml <<'Y'
steps:
- name: ubuntu
  args: ['true']
  volumes:
  - {name: v, path: /x}
  - {name: ok1, path: relative}
  - {name: ok2, path: /workspace}
  - {name: ok3, path: /cloudbuild/x}
- name: ubuntu
  args: ['true']
  volumes: [{name: lonely, path: /lonely}, {name: ok2, path: /a}, {name: ok3, path: /b}, {name: v, path: /c}, {name: ok1, path: /d}]
Y
rc=$(run_kiln out validate bad.yaml)
check "bad volumes: exit 2" test "$rc" = 2
check "name too short" has_line out 'bad.yaml:5:12: error: build step #0: volume name "v" does not match "^[a-zA-Z0-9][a-zA-Z0-9_.-]+$" (a name has two characters or more)'
check "relative path" has_line out 'bad.yaml:6:23: error: build step #0: path "relative" is not valid, must be absolute'
check "reserved path" has_line out 'bad.yaml:7:23: error: build step #0: path "/workspace" is reserved'
check "/cloudbuild/" has_line out 'bad.yaml:8:23: error: build step #0: volume path "/cloudbuild/x" cannot start with /cloudbuild/'
check "used by one step" has_line out 'bad.yaml:11:20: error: Volume "lonely" is only used by one step'
cat > global1.yaml <<'Y'
options:
  volumes: [{name: gg, path: /g}]
steps:
- {name: ubuntu, args: ['true'], volumes: [{name: gg, path: /h}]}
Y
rc=$(run_kiln out validate global1.yaml)
check "global volumes, one step: exit 2" test "$rc" = 2
check "...Cloud Build's text" has_line out 'global1.yaml:2:12: error: Global volumes defined but there are fewer than two steps'
check "...and the clash with the global name" has_line out 'global1.yaml:4:51: error: build step #0: volume name "gg" conflicts with global volume'

# 6. A volume that would hide the workspace or kiln's own files.
cat > hide.yaml <<Y
steps:
- {name: ubuntu, args: ['touch', '$TMP/ran'], volumes: [{name: vv, path: $TMP}]}
- {name: ubuntu, args: ['true'], volumes: [{name: vv, path: $TMP}]}
Y
rc=$(run_kiln out run hide.yaml)
check "volume over the workspace: exit 2, nothing run" test "$rc" = 2 -a ! -e "$TMP/ran"
check "...saying which volume and why" grep -qE "^hide.yaml:2:[0-9]+: error: build step #0: volume path \"$TMP\" would hide the workspace $TMP/ws from the step" out
check "...then that nothing was run" has_line out "kiln: hide.yaml: nothing was run"
rc=$(cd / && TMPDIR=$TMPDIR run_kiln "$TMP/out6" run --workspace /var/tmp "$TMP/ws/hide.yaml")
check "volume over TMPDIR: exit 2" test "$rc" = 2
check "...saying to move TMPDIR" grep -qF "would hide kiln's directory for step files $TMPDIR (TMPDIR); set TMPDIR to a directory outside it" "$TMP/out6"

# 7. As a user other than root: user namespaces keep the user's own ids.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    mkdir -p "$TMP/bin/plugins" "$TMP/nb" "$TMP/nbtmp"
    cp "$KILN" "$(dirname "$KILN")/kiln-mount-exec" "$TMP/bin/"
    cp "$KILN_PLUGIN_PATH"/*.so "$TMP/bin/plugins/"
    chmod 755 "$TMP" "$TMP/bin" "$TMP/bin/plugins"
    chmod 777 "$TMP/nb" "$TMP/nbtmp"
    cat > "$TMP/nb/user.yaml" <<Y
steps:
- {name: ubuntu, entrypoint: bash, args: ['-c', 'id -un > $ROOTDIR/who; touch mine'], volumes: [{name: vv, path: $ROOTDIR}]}
- {name: ubuntu, entrypoint: bash, args: ['-c', 'cat $ROOTDIR/who; stat -c %U mine $ROOTDIR/who'], volumes: [{name: vv, path: $ROOTDIR}]}
Y
    as_nobody() { (cd "$TMP/nb" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env TMPDIR="$TMP/nbtmp" KILN_PLUGIN_PATH="$TMP/bin/plugins" "$@"); }
    rc=0; as_nobody "$TMP/bin/kiln" run user.yaml --log-dir logs >"$TMP/out7" 2>&1 || rc=$?
    check "as nobody: exit 0" test "$rc" = 0
    check "as nobody: the step runs as nobody and its files are nobody's" \
        test "$(grep -v '^kiln:' "$TMP/nb/logs/step-1.log" 2>/dev/null | tr '\n' ' ')" = "nobody nobody nobody "
    check "as nobody: the workspace file is nobody's on this machine" test "$(stat -c %U "$TMP/nb/mine")" = nobody
    check "as nobody: nothing left" test -z "$(ls "$TMP/nbtmp")"

    # A machine that refuses user namespaces (an administrator's sysctl, or
    # Ubuntu's AppArmor policy): one clear line, nothing run.
    rm -f "$TMP/nb/mine"
    rc=0; (cd "$TMP/nb" && "$KILN_BUILD_DIR/tests/tools/no_userns" 65534 65534 \
        env TMPDIR="$TMP/nbtmp" KILN_PLUGIN_PATH="$TMP/bin/plugins" "$TMP/bin/kiln" run user.yaml) \
        >"$TMP/out8" 2>&1 || rc=$?
    check "no user namespaces: exit 1" test "$rc" = 1
    check "...one line saying why and where to look" grep -qE "^kiln: user.yaml: volumes: this machine does not let kiln make a private mount namespace \(unshare: No space left on device\); unprivileged user namespaces are turned off \(see sysctl user.max_user_namespaces" "$TMP/out8"
    check "...nothing ran, nothing left" test ! -e "$TMP/nb/mine" -a -z "$(ls "$TMP/nbtmp")"
else
    echo "skip - not root: the other-user and no-user-namespace cases need root to set up"
fi

finish
