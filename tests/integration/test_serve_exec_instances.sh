#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kiln serve --executor: how the server uses executor instances (issue 12),
# seen through test-recorder (tests/plugins/exec_recorder/), an executor
# that writes every call of each instance to a file and "runs" a process
# by printing one line. No container engine needed: this runs everywhere.
# Checked: the startup check opens, closes and destroys one instance; each
# build gets its own instance (init, open with its id, close, destroy, in
# that order), every spawn of the build and of its sub-build goes to it
# with the top build's id; what open() says is in the build's log; a
# build whose open() fails ends INTERNAL_ERROR saying why; an open() that
# fails at startup stops kiln serve (exit 2, one line).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/serve_lib.sh"
: "${KILN_TEST_PLUGIN_DIR:?}"

git init -q --bare -b master "$TMP/app.git"
git init -q -b master "$TMP/work"
cat >"$TMP/work/cloudbuild.yaml" <<'YAML'
steps:
- id: one
  name: some/image
  args: ['first']
- id: local
  script: echo "no image, on this machine"
- id: child
  uses: submit-sub-build
  with: {config: child.yaml}
- id: two
  name: some/image
  args: ['second']
  waitFor: [child]
YAML
printf 'steps:\n- id: c1\n  name: other/image\n  args: [x]\n' >"$TMP/work/child.yaml"
git -C "$TMP/work" add -A
git -C "$TMP/work" commit -q -m first
git -C "$TMP/work" push -q "$TMP/app.git" master
cat >"$TMP/triggers.yaml" <<YAML
triggers:
- name: img
  repo: $TMP/app.git
  branch: ^master\$
YAML
REC=$TMP/rec.log
X="test-recorder:log=$REC"

start_serve --max-builds 2 --plugin-path "$KILN_TEST_PLUGIN_DIR" --executor "$X"
check "the server checked the executor" has_line "$TMP/serve.log" "executor test-recorder: ready"
check "... one instance opened, closed and destroyed" \
    test "$(awk '{print $1}' "$REC" | tr '\n' ' ')" = "open close destroy "
a=$(run_trigger img '{"branch": "master"}')
b=$(run_trigger img '{"branch": "master"}')
check "build A succeeds" wait_status 120 "$a" SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "build B succeeds" wait_status 120 "$b" SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "... both SUCCESS" test "$(bstatus "$a") $(bstatus "$b")" = "SUCCESS SUCCESS"
# life BUILD: that build's lines of the record, "CALL STEP" with INST checked
life() {
    python3 - "$REC" "$1" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1])]
mine = [l for l in lines if len(l) >= 3 and l[2] == sys.argv[2]]
insts = {l[1] for l in mine}
out = [" ".join([l[0]] + l[3:]) for l in mine]
print(("ONE-INSTANCE " if len(insts) == 1 else "INSTANCES=%d " % len(insts)) + ",".join(out))
PY
}
for x in a b; do
    id=${!x}
    check "build ${x^^}: one instance: open, its spawns (the sub-build's too), close, destroy" \
        test "$(life "$id")" = "ONE-INSTANCE open,spawn one,spawn c1,spawn two,close,destroy"
    check "build ${x^^}: its log says what open() said" has_line "$TMP/data/builds/$id/logs/build.log" \
        "executor test-recorder: opened for $id"
    check "build ${x^^}: the step ran through the executor (API log)" \
        test "$(curl -s "$BASE/api/builds/$id/log?step=one" | jq_ '[r["text"] for r in j["records"] if r["stream"]=="stdout"]')" = \
        "['recorder ran one in some/image for $id']"
    check "build ${x^^}: the step without an image ran here" has_line "$TMP/data/builds/$id/logs/local.log" "no image, on this machine"
done
check "no spawn went to another build's instance" lacks_line "$REC" MISMATCH
ia=$(awk -v b="$a" '$1=="open" && $3==b {print $2}' "$REC")
ib=$(awk -v b="$b" '$1=="open" && $3==b {print $2}' "$REC")
check "A's instance was destroyed before B's was made, or they are two" \
    python3 - "$REC" "$ia" "$ib" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1])]
ia, ib = sys.argv[2], sys.argv[3]
if ia != ib:
    sys.exit(0)
# the same address twice: the first one's life ended before the second's began
ends = [i for i, l in enumerate(lines) if l[0] == "destroy" and l[1] == ia]
opens = [i for i, l in enumerate(lines) if l[0] == "open" and l[1] == ia]
sys.exit(0 if len(ends) >= 2 and ends[0] < opens[1] else 1)
PY
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true
check "every instance opened was destroyed" \
    test "$(grep -c '^open ' "$REC")" = "$(grep -c '^destroy ' "$REC")"

# A build whose open() fails: INTERNAL_ERROR, saying why; nothing ran.
n=$(grep -c '^open ' "$REC")
start_serve --plugin-path "$KILN_TEST_PLUGIN_DIR" --executor "$X,open_limit=$((n + 1))"
c=$(run_trigger img '{"branch": "master"}')
check "a build whose executor cannot be opened ends" wait_status 120 "$c" SUCCESS FAILURE CANCELLED INTERNAL_ERROR
check "... INTERNAL_ERROR with the executor's reason" \
    test "$(api GET "/api/builds/$c" | jq_ 'j["status"]+": "+j["statusDetail"]')" = \
    "INTERNAL_ERROR: executor test-recorder: open refused for $c (open_limit $((n + 1)))"
check "... nothing of it was spawned" lacks_line "$REC" "spawn 0x"*" $c"
check "... the refused instance was destroyed all the same" \
    test "$(grep -c "^open-refused .* $c\$" "$REC") $(grep -c "^destroy .* $c\$" "$REC")" = "1 1"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true

# An open() that fails at startup: exit 2, one line, nothing listens.
n=$(grep -c '^open ' "$REC")
port=$(free_port)
rc=0
timeout 120 "$KILN" serve --triggers "$TMP/triggers.yaml" --listen "127.0.0.1:$port" --data "$TMP/data" \
    --plugin-path "$KILN_TEST_PLUGIN_DIR" --executor "$X,open_limit=$n" >"$TMP/refused.txt" 2>&1 || rc=$?
check "an executor that cannot be opened at startup: exit 2" test "$rc" = 2
check "... one line saying why" test "$(wc -l <"$TMP/refused.txt")" = 1
check "... naming the executor (not its options) and its reason" grep -q "^kiln: serve: --executor test-recorder: executor test-recorder: open refused" "$TMP/refused.txt"
rc=0
timeout 120 "$KILN" serve --triggers "$TMP/triggers.yaml" --listen "127.0.0.1:$port" --data "$TMP/data" \
    --plugin-path "$KILN_TEST_PLUGIN_DIR" --executor "test-recorder" >"$TMP/noopt.txt" 2>&1 || rc=$?
check "a required option missing: exit 2" test "$rc" = 2
check "... saying which" grep -q "log" "$TMP/noopt.txt"
finish
