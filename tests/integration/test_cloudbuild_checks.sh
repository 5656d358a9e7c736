#!/usr/bin/env bash
# Cloud Build's own checks and notes that `kiln validate` reproduces: fields
# that mean nothing locally are accepted with a note, size limits warn,
# tags and image names are checked after substitution, snake_case works.
set -uo pipefail
: "${KILN:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL - $what"; fi; }

cat > notes.yaml <<'Y'
steps:
- name: ubuntu
  args: [echo, hi]
  wait_for: ['-']
logs_bucket: gs://somewhere
options:
  machine_type: E2_HIGHCPU_8
  substitution_option: ALLOW_LOOSE
  pool: {name: projects/p/locations/l/workerPools/w}
Y
"$KILN" validate notes.yaml >out 2>err; rc=$?
check "local-only fields: still valid" test $rc = 0
check "machineType noted (snake_case spelling accepted)" grep -q "notes.yaml:7:3: note: options.machine_type: steps run on this machine; machineType is ignored" err
check "logsBucket noted" grep -q "notes.yaml:5:1: note: logs_bucket: logs go to kiln's log sinks" err
check "pool noted" grep -q "note: options.pool: steps run on this machine, not in a worker pool" err

python3 -c '
print("steps:")
for i in range(101): print(f"- id: s{i}\n  args: [\"true\"]")' > big.yaml
"$KILN" validate big.yaml >out 2>err; rc=$?
check "101 steps: valid for kiln" test $rc = 0
check "101 steps: warns that Cloud Build would reject it" grep -q "big.yaml:2:1: warning: Cloud Build would reject this build: 101 steps, at most 100 are allowed" err
"$KILN" validate --cloudbuild-strict big.yaml >out 2>err; rc=$?
check "101 steps, --cloudbuild-strict: exit 2" test $rc = 2
check "...the limit is an error" grep -q "big.yaml:2:1: error: Cloud Build would reject this build: 101 steps, at most 100 are allowed" err

cat > kilnish.yaml <<'Y'
steps:
- id: a
  uses: exec
  with: {args: [echo, hi]}
  retry: {limit: 1}
options: {max_parallel: 2}
finally:
- args: [echo]
Y
"$KILN" validate kilnish.yaml >out 2>err; rc=$?
check "kiln's own fields: valid by default" test $rc = 0
"$KILN" validate --cloudbuild-strict kilnish.yaml >out 2>err; rc=$?
check "kiln's own fields, --cloudbuild-strict: exit 2" test $rc = 2
for want in '3:3: error: build step #0 - "a": uses: a field of kiln'"'"'s own, which Cloud Build would reject (--cloudbuild-strict)' \
            '4:3: error: build step #0 - "a": with: a field' '5:3: error: build step #0 - "a": retry: a field' \
            '6:11: error: options.max_parallel: a field' '7:1: error: finally: a field'; do
    check "--cloudbuild-strict names $want" grep -qF "kilnish.yaml:$want" err
done
"$KILN" run --cloudbuild-strict kilnish.yaml >out 2>err; rc=$?
check "run --cloudbuild-strict refuses it too, running nothing" test $rc = 2 -a ! -s out

cat > tags.yaml <<'Y'
substitutions: {_T: "x/y"}
steps:
- name: My/Image:Latest
  args: [echo]
- name: ubuntu:Latest
  args: [echo]
tags: [ok-tag, "bad tag", "$_T"]
Y
"$KILN" validate tags.yaml >out 2>err; rc=$?
check "bad tags and image names: exit 2" test $rc = 2
check "a tag with a space" grep -qF 'tags.yaml:7:16: error: invalid build tag "bad tag": must match format "^[\w][\w.-]{0,127}$"' err
check "a tag bad only after substitution" grep -qF 'tags.yaml:7:27: error: invalid build tag "x/y"' err
check "an image repository with uppercase letters" grep -qF 'tags.yaml:3:9: error: build step #0: invalid image name "My/Image:Latest" contains uppercase letters' err
check "an uppercase tag is fine" bash -c '! grep -q "ubuntu:Latest" err'
check "three errors in all" grep -q "3 errors; nothing was run" err

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
