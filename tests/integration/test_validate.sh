#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `kiln validate`: every error with FILE:LINE:COL, all of them at once,
# exit 2; a good file exits 0 and says "valid". Substitution errors in
# Cloud Build's words, MUST_MATCH and ALLOW_LOOSE, --substitutions.
source "$(dirname "$0")/lib.sh"

# vcheck FILE: run kiln validate FILE into v.txt, print the exit code
vcheck() { run_kiln v.txt validate "$@"; }

echo "# a good file"
cat >good.yaml <<'EOF2'
substitutions:
  _GREETING: hello
steps:
- id: a
  args: [echo, '$_GREETING']
- id: b
  script: echo b
finally:
- id: f
  script: echo f
EOF2
rc=$(vcheck good.yaml)
check "good: exit 0" test "$rc" = 0
check "good: says valid" has_line v.txt "good.yaml: valid (2 steps, with finally steps)"

echo "# invalid YAML"
printf 'steps:\n- id: a\n  args: [echo, "hi"\n- id: b\n' >yaml.yaml
rc=$(vcheck yaml.yaml)
check "invalid YAML: exit 2" test "$rc" = 2
check "invalid YAML: file:line:col and what went wrong" grep -qE '^yaml.yaml:[0-9]+:[0-9]+: error: invalid YAML: ' v.txt
check "invalid YAML: says nothing was run" has_line v.txt "kiln: yaml.yaml: 1 error; nothing was run"

echo "# collect-all: three errors in one file, each with its position"
cat >three.yaml <<'EOF2'
steps:
- id: a
  args: [echo, a]
  timout: 10s
- id: b
  args: echo
- id: c
  args: [echo, c]
  timeout: 30
EOF2
rc=$(vcheck three.yaml)
check "three errors: exit 2" test "$rc" = 2
check "three errors: unknown field with did you mean" has_line v.txt 'three.yaml:4:3: error: unknown field "timout" in build step #0 - "a" (did you mean "timeout"?)'
check "three errors: a string where a list is required" has_line v.txt "three.yaml:6:9: error: build step #1 - \"b\": args: expected a list; repeated string fields containing one element must be specified like ['foo'], not 'foo'"
check "three errors: a duration without s" has_line v.txt 'three.yaml:9:12: error: build step #2 - "c": timeout: expected a duration in seconds with an '"'"'s'"'"' suffix, such as "30s" or "1.5s", got '"'"'30'"'"''
check "three errors: counted" has_line v.txt "kiln: three.yaml: 3 errors; nothing was run"
check "three errors: exactly 3 error lines" test "$(grep -c ': error: ' v.txt)" = 3

echo "# ids and waitFor"
cat >ids.yaml <<'EOF2'
steps:
- id: a
  script: echo a
- id: b
  waitFor: [x]
  script: echo b
- id: a
  script: echo again
- id: d
  waitFor: [e]
  script: echo d
- id: e
  script: echo e
EOF2
rc=$(vcheck ids.yaml)
check "ids: exit 2" test "$rc" = 2
check "unknown waitFor id: Cloud Build's text" has_line v.txt 'ids.yaml:5:13: error: build step #1 - "b" depends on "x", which has not been defined'
check "duplicate id" has_line v.txt 'ids.yaml:7:7: error: build step #2 - "a": the ID is not unique'
check "waitFor a later step: says only earlier ones count" has_line v.txt 'build step #3 - "d" depends on "e", which has not been defined (only earlier steps can be named in waitFor)'
check "ids: 3 errors" has_line v.txt "kiln: ids.yaml: 3 errors; nothing was run"

echo "# one error is reported once"
cat >empty-step.yaml <<'EOF2'
steps:
- id: a
  env: ['X=1']
EOF2
rc=$(vcheck empty-step.yaml)
check "nothing to run: exit 2" test "$rc" = 2
check "nothing to run: one error, not two" has_line v.txt "kiln: empty-step.yaml: 1 error; nothing was run"
check "nothing to run: says what to give" has_line v.txt 'empty-step.yaml:2:3: error: build step #0 - "a": nothing to run'

echo "# kiln run refuses an invalid file and runs nothing"
rc=$(run_kiln out.txt run three.yaml)
check "run invalid: exit 2" test "$rc" = 2
check "run invalid: no step started" lacks_line out.txt "starting"

echo "# substitutions"
cat >subst.yaml <<'EOF2'
steps:
- id: a
  args: [echo, '$FOO']
EOF2
rc=$(vcheck subst.yaml)
check "unknown built-in: exit 2" test "$rc" = 2
check "unknown built-in: Cloud Build's text" has_line v.txt "subst.yaml:3:16: error: invalid value for 'build.substitutions': key in the template \"FOO\" is not a valid built-in substitution"

cat >unused.yaml <<'EOF2'
substitutions:
  _X: one
steps:
- id: a
  args: [echo, hi]
EOF2
rc=$(vcheck unused.yaml)
check "unused _X under MUST_MATCH: exit 2" test "$rc" = 2
check "unused _X: message at the key" has_line v.txt "unused.yaml:2:3: error: invalid value for 'build.substitutions': key \"_X\" in the substitution data is not matched in the template"
cat >loose.yaml <<'EOF2'
substitutions:
  _X: one
options:
  substitutionOption: ALLOW_LOOSE
steps:
- id: a
  args: [echo, hi, '$_MISSING']
EOF2
rc=$(vcheck loose.yaml)
check "ALLOW_LOOSE accepts an unused _X: exit 0" test "$rc" = 0
check "ALLOW_LOOSE: valid" has_line v.txt "loose.yaml: valid (1 step)"

cat >override.yaml <<'EOF2'
substitutions:
  _X: from-file
steps:
- id: a
  args: [echo, 'X is $_X']
EOF2
rc=$(run_kiln out.txt run override.yaml --substitutions _X=1)
check "--substitutions _X=1: exit 0" test "$rc" = 0
check "--substitutions _X=1 overrides the file" has_line out.txt "[a] X is 1"
rc=$(run_kiln out.txt run override.yaml)
check "without --substitutions the file's value is used" has_line out.txt "[a] X is from-file"
rc=$(run_kiln out.txt validate override.yaml --substitutions _Y=2)
check "--substitutions _Y=2 unused: exit 2" test "$rc" = 2
check "--substitutions _Y=2 unused: blamed on the command line, not on a line of the file" has_line out.txt "--substitutions: error: invalid value for 'build.substitutions': key \"_Y\" in the substitution data is not matched in the template"

rc=$(run_kiln out.txt validate override.yaml --substitutions x=1)
check "bad key on the command line: exit 2" test "$rc" = 2
check "bad key on the command line: the format" has_line out.txt "substitution key \"x\" does not respect format \"^_[A-Z0-9_]+\$\""
cat >badkey.yaml <<'EOF2'
substitutions:
  _ok: 1
steps:
- id: a
  args: [echo, hi]
EOF2
rc=$(vcheck badkey.yaml)
check "bad key in the file: exit 2" test "$rc" = 2
check "bad key in the file: position and format" has_line v.txt "badkey.yaml:2:3: error: invalid .substitutions field: substitution key \"_ok\" does not respect format"
rc=$(run_kiln out.txt validate good.yaml --substitutions novalue)
check "--substitutions without '=': exit 2" test "$rc" = 2
check "--substitutions without '=': says so" has_line out.txt "'novalue' is not KEY=VALUE"

echo "# a step that names a plugin that does not exist"
cat >noplugin.yaml <<'EOF2'
steps:
- id: a
  uses: no-such-plugin
EOF2
rc=$(vcheck noplugin.yaml)
check "unknown plugin: exit 2" test "$rc" = 2
check "unknown plugin: position and where it looked" has_line v.txt "noplugin.yaml:3:9: error: build step #0 - \"a\": no step plugin named 'no-such-plugin' (looked for kiln-step-no-such-plugin.so in"

finish
