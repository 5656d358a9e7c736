#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A sink that loses step output says so (ABI 1.5, sink_lost): the build's
# result stands, the report (logLoss) and the end-of-run summary name the
# sink, the step, the bytes and lines lost and why; a required sink turns
# the loss into a build failure.
#
# Part 1: --log-dir on a full file system: a 1 MiB tmpfs (mounted in a mount
# namespace of its own: `unshare -m` as root, `unshare -rm` otherwise; the
# part is skipped, saying why, where neither works) and a step printing
# ~3 MB. Part 2: the test sink "lossy" (tests/plugins/sink_lossy) loses
# output through sink_lost from a later callback, a write() that fails and
# an open() that fails.
source "$(dirname "$0")/lib.sh"
: "${KILN_TEST_PLUGIN_DIR:?}"

# ---- part 1: a full file system under --log-dir ---------------------------

cat > big.yaml <<'Y'
steps:
- id: print
  uses: exec
  with:
    args: [sh, -c, 'head -c 3000000 /dev/zero | tr "\0" x | fold -w 99']
Y
# 3,000,000 x in lines of 99 and their newlines; the last line (3 bytes) has none
PRINTED_BYTES=3030303
PRINTED_LINES=30304

# in_tmpfs OUT ARGS...: run kiln ARGS with $TMP/full a fresh 1 MiB tmpfs,
# stdout+stderr to OUT; prints kiln's exit code.
cat > in_tmpfs.sh <<'S'
set -e
mount -t tmpfs -o size=1m kiln-sink-loss "$TMP/full"
out=$1; shift
rc=0; "$KILN" "$@" >"$out" 2>&1 || rc=$?
cp -r "$TMP/full/." "$TMP/kept/"   # what reached the disk, for the checks
echo "$rc"
S
mkdir -p full
NS=
if [ "$(id -u)" = 0 ] && unshare -m sh -c "mount -t tmpfs -o size=1m t '$TMP/full'" 2>/dev/null; then
    NS="unshare -m"
elif unshare -rm sh -c "mount -t tmpfs -o size=1m t '$TMP/full'" 2>/dev/null; then
    NS="unshare -rm"
fi
in_tmpfs() {
    rm -rf kept && mkdir kept
    TMP=$TMP KILN=$KILN KILN_PLUGIN_PATH=${KILN_PLUGIN_PATH:-} $NS bash in_tmpfs.sh "$@"
}
# facts REPORT EXPR...: sets V[i] to Python EXPR i over the report `j`
# (one interpreter per report: starting Python is slow on a busy machine)
facts() {
    mapfile -t V < <(python3 -c 'import json,sys
j=json.load(open(sys.argv[1]))
def loss(sink, step):
    l=[x for x in j["logLoss"] if x["sink"]==sink and x["step"]==step]
    return " ".join(str(l[0][k]) for k in ("bytes","lines","reason","required")) if l else "NONE"
def status(key):
    return next((s["status"] for s in j["steps"]+j["finally"] if s["key"]==key), "ABSENT")
for e in sys.argv[2:]:
    print(eval(e))' "$@")
}

if [ -z "$NS" ]; then
    echo "SKIP - part 1: cannot mount a tmpfs in a mount namespace here (unshare -m as root and unshare -rm both failed; are user namespaces turned off?)"
else
    echo "# part 1 mounts its tmpfs with: $NS"
    rc=$(in_tmpfs out1.txt run big.yaml --quiet --log-dir "$TMP/full/logs" --report "$TMP/r1.json")
    facts r1.json 'j["status"]' 'status("print")' 'loss("file", "print")' \
        '[(x["sink"], x["bytes"], x["lines"]) for x in j["steps"][0]["logLoss"]]' 'len(j["logLoss"])'
    check "full disk: exit 0 (the build's result stands)" test "$rc" = 0
    check "full disk: build SUCCESS" test "${V[0]}" = SUCCESS
    check "full disk: step SUCCESS" test "${V[1]}" = SUCCESS
    kept_bytes=$(wc -c < kept/logs/print.log)
    kept_lines=$(wc -l < kept/logs/print.log)
    check "full disk: about 1 MiB kept ($kept_bytes bytes)" test "$kept_bytes" -gt 900000 -a "$kept_bytes" -le 1048576
    check "full disk: report names sink 'file' and step 'print'" test "${V[2]}" != NONE
    read -r lost_bytes lost_lines reason <<<"${V[2]}"
    check "full disk: kept + lost bytes = printed ($kept_bytes + $lost_bytes = $PRINTED_BYTES)" \
        test $((kept_bytes + lost_bytes)) = "$PRINTED_BYTES"
    check "full disk: whole lines kept + lines lost = printed ($kept_lines + $lost_lines = $PRINTED_LINES)" \
        test $((kept_lines + lost_lines)) = "$PRINTED_LINES"
    check "full disk: reason, not required" test "$reason" = "No space left on device False"
    check "full disk: the step's own logLoss says the same" \
        test "${V[3]}" = "[('file', $lost_bytes, $lost_lines)]"
    check "full disk: one warning while running" \
        test "$(count_lines out1.txt "kiln: warning: log sink 'file' is losing records (step 'print': No space left on device)")" = 1
    check "full disk: the summary says it" \
        has_line out1.txt "kiln: warning: log sink 'file' lost $lost_bytes bytes ($lost_lines lines) of step 'print': No space left on device"
    check "full disk: no loss of the console" test "${V[4]}" = 1

    rc=$(in_tmpfs out2.txt run big.yaml --quiet --log-dir "$TMP/full/logs" --log-dir-required --report "$TMP/r2.json")
    facts r2.json 'j["status"]' 'j["statusDetail"]' 'j["logLoss"][0]["required"]'
    check "--log-dir-required: exit 1" test "$rc" = 1
    check "--log-dir-required: build FAILURE" test "${V[0]}" = FAILURE
    check "--log-dir-required: the reason names the sink" \
        test "${V[1]}" = "required log sink 'file' lost records of step 'print': No space left on device"
    check "--log-dir-required: marked required in the report" test "${V[2]}" = True
    check "--log-dir-required: the summary says it" \
        grep -qE "^kiln: error: required log sink 'file' lost [0-9]+ bytes \([0-9]+ lines\) of step 'print': No space left on device$" out2.txt
    check "--log-dir-required: the console's last word is FAILURE with the reason" \
        grep -qE "^FAILURE build .*: required log sink 'file' lost records of step 'print'" out2.txt

    rc=$(in_tmpfs out3.txt run big.yaml --quiet --sink "file:dir=$TMP/full/logs,required=true" --report "$TMP/r3.json")
    facts r3.json 'j["status"]'
    check "--sink file:dir=...,required=true: exit 1, FAILURE" test "$rc:${V[0]}" = 1:FAILURE

    # The jsonl sink on the same full disk: its file stays whole records, and
    # what it could not write is counted (records of a chunk that did not
    # wholly reach the disk count as lost: at least what is missing).
    rc=$(in_tmpfs out4.txt run big.yaml --quiet --sink "jsonl:path=$TMP/full/log.jsonl" --report "$TMP/r4.json")
    facts r4.json 'j["status"]' 'loss("jsonl", "print")'
    check "jsonl, full disk: exit 0, SUCCESS" test "$rc:${V[0]}" = 0:SUCCESS
    check "jsonl, full disk: the report names sink 'jsonl' and step 'print'" test "${V[1]}" != NONE
    read -r lost_bytes lost_lines reason <<<"${V[1]}"
    kept_lines=$(python3 -c 'import json,sys
n=0
for l in open(sys.argv[1], "rb").read().split(b"\n"):
    try: r=json.loads(l)
    except ValueError: continue
    n += r.get("step_id") == "print" and "seq" in r
print(n)' kept/log.jsonl)
    check "jsonl, full disk: whole records kept + lines lost >= printed ($kept_lines + $lost_lines >= $PRINTED_LINES)" \
        test $((kept_lines + lost_lines)) -ge "$PRINTED_LINES"
    check "jsonl, full disk: some lines were kept, not all counted lost" test "$kept_lines" -gt 1000 -a "$lost_lines" -lt "$PRINTED_LINES"
    check "jsonl, full disk: reason" test "$reason" = "No space left on device False"
    check "jsonl, full disk: the summary says it" \
        has_line out4.txt "kiln: warning: log sink 'jsonl' lost $lost_bytes bytes ($lost_lines lines) of step 'print': No space left on device"
fi

# ---- part 3: the console's reader goes away --------------------------------
# `kiln run ... | head`: the console's writes fail with EPIPE (kiln ignores
# SIGPIPE); a console on a full device fails with ENOSPC. Neither is silent:
# the loss is counted per step, warned on stderr and in the report, and the
# build's result stands (the console is not required).
rc=0
{ "$KILN" run big.yaml --report "$TMP/r5.json" 2>err5.txt || rc=$?; } | head -c 100 >/dev/null
facts r5.json 'j["status"]' 'loss("console", "print")'
check "console | head: exit 0, SUCCESS" test "$rc:${V[0]}" = 0:SUCCESS
read -r lost_bytes lost_lines reason <<<"${V[1]}"
check "console | head: the report counts what the closed pipe lost (${V[1]})" \
    test "${V[1]}" != NONE -a "${lost_lines:-0}" -gt 0 -a "${lost_lines:-0}" -le "$PRINTED_LINES"
check "console | head: reason" test "$reason" = "Broken pipe False"
check "console | head: warned on stderr" \
    has_line err5.txt "kiln: warning: log sink 'console' is losing records (step 'print': Broken pipe); the report and the summary count what is lost"
check "console | head: the summary says it" \
    has_line err5.txt "kiln: warning: log sink 'console' lost $lost_bytes bytes ($lost_lines lines) of step 'print': Broken pipe"

if [ -w /dev/full ]; then
    rc=0
    "$KILN" run big.yaml --report "$TMP/r6.json" >/dev/full 2>err6.txt || rc=$?
    facts r6.json 'j["status"]' 'loss("console", "print")'
    check "console on /dev/full: exit 0, SUCCESS" test "$rc:${V[0]}" = 0:SUCCESS
    check "console on /dev/full: every line counted lost" \
        test "${V[1]}" = "$PRINTED_BYTES $PRINTED_LINES No space left on device False"
else
    echo "# skipped: no writable /dev/full here"
fi

# ---- part 2: a sink plugin that loses output ------------------------------

cat > q.yaml <<'Y'
steps:
- id: a
  uses: exec
  with:
    args: [seq, 1, 1000]
- id: b
  uses: exec
  with:
    args: [seq, 1, 500]
- id: c
  uses: exec
  with:
    args: [echo, fine]
Y
A_BYTES=$(seq 1 1000 | wc -c)
B_BYTES=$(seq 1 500 | wc -c)
P=(--plugin-path "$KILN_TEST_PLUGIN_DIR" --quiet --max-parallel 1)

rc=$(run_kiln out4.txt run q.yaml "${P[@]}" --sink lossy:lose_step=a,fail_step=b --report r4.json)
facts r4.json 'j["status"]' 'loss("lossy", "a")' 'loss("lossy", "b")' 'len(j["logLoss"])' \
    '[s["logLoss"] for s in j["steps"]]'
check "lossy: exit 0, SUCCESS" test "$rc:${V[0]}" = 0:SUCCESS
check "lossy: sink_lost from a later callback is counted" \
    test "${V[1]}" = "$A_BYTES 1000 dropped on purpose False"
check "lossy: a write() that fails is counted by kiln" \
    test "${V[2]}" = "$B_BYTES 500 i/o error False"
check "lossy: nothing else lost" test "${V[3]}" = 2
check "lossy: the step's logLoss" \
    test "${V[4]}" = "[[{'sink': 'lossy', 'bytes': $A_BYTES, 'lines': 1000, 'reason': 'dropped on purpose', 'required': False}], [{'sink': 'lossy', 'bytes': $B_BYTES, 'lines': 500, 'reason': 'i/o error', 'required': False}], []]"
check "lossy: one warning while running, for the first loss" \
    test "$(count_lines out4.txt "is losing records")" = 1
check "lossy: summary line for a" has_line out4.txt "kiln: warning: log sink 'lossy' lost $A_BYTES bytes (1000 lines) of step 'a': dropped on purpose"
check "lossy: summary line for b" has_line out4.txt "kiln: warning: log sink 'lossy' lost $B_BYTES bytes (500 lines) of step 'b': i/o error"

rc=$(run_kiln out5.txt run q.yaml "${P[@]}" --sink lossy:lose_step=c,required=true --report r5.json)
facts r5.json 'j["status"] + ": " + j["statusDetail"]' 'status("a") + " " + status("b")'
check "lossy required: exit 1" test "$rc" = 1
check "lossy required: FAILURE naming the sink" \
    test "${V[0]}" = "FAILURE: required log sink 'lossy' lost records of step 'c': dropped on purpose"
check "lossy required: the steps before it succeeded" test "${V[1]}" = "SUCCESS SUCCESS"

rc=$(run_kiln out6.txt run q.yaml "${P[@]}" --sink lossy:lose_step=a,required=true --report r6.json)
facts r6.json 'j["status"]' 'status("c")'
check "lossy required, loss in the first step: the build stops (FAILURE, c never runs)" \
    test "$rc:${V[0]}:${V[1]}" = "1:FAILURE:QUEUED"

rc=$(run_kiln out7.txt run q.yaml "${P[@]}" --sink lossy:fail_open=true --report r7.json)
facts r7.json 'j["status"]' 'loss("lossy", "a") + "|" + loss("lossy", "b")'
check "open() fails: the build runs (exit 0, SUCCESS)" test "$rc:${V[0]}" = 0:SUCCESS
check "open() fails: one warning" test "$(count_lines out7.txt "warning: cannot open log sink 'lossy': permission denied")" = 1
check "open() fails: every step's output counted lost" \
    test "${V[1]}" = "$A_BYTES 1000 cannot open the sink: permission denied False|$B_BYTES 500 cannot open the sink: permission denied False"

rc=$(run_kiln out8.txt run q.yaml "${P[@]}" --sink lossy:fail_open=true,required=true --report r8.json)
check "open() fails, required: exit 1, nothing run" test "$rc:$(test -e r8.json && echo report || echo none)" = 1:none
check "open() fails, required: says which sink" has_line out8.txt "kiln: cannot open required log sink 'lossy': permission denied"

rc=$(run_kiln out9.txt run q.yaml "${P[@]}" --sink lossy:required=maybe)
check "required=maybe: refused" test "$rc" != 0
check "required=maybe: says what is expected" has_line out9.txt "required: expected true or false, got 'maybe'"
rc=$(run_kiln out10.txt run q.yaml --log-dir-required)
check "--log-dir-required without --log-dir: usage error" test "$rc" = 2

"$KILN" plugins file > plugins.txt
check "kiln plugins file: shows kiln's required option" grep -qE "^  required +boolean +default: false. \(kiln's, for every sink\)$" plugins.txt
"$KILN" plugins file --json > plugins.json
facts plugins.json '[o.get("kiln") for o in j["options"] if o["name"]=="required"]'
check "kiln plugins file --json: required, marked as kiln's" test "${V[0]}" = "[True]"

finish
