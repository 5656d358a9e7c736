#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# No process of a step outlives kiln: kill -9 of `kiln run` while steps run
# a background grandchild, a child that ignores SIGTERM and a process in a
# volume's mount namespace; kiln-watchdog kills their groups. The normal
# ends (success, failure, timeout, Ctrl-C) leave nothing, not even the
# watchdog; a group id kiln has forgotten is not killed when it is reused;
# a killed watchdog is replaced.
source "$(dirname "$0")/lib.sh"

# watchdog_of PID: the pid of the live kiln-watchdog of the kiln with that pid
watchdog_of() {
    ps -eo pid=,stat=,args= | awk -v p="$1" '$2 !~ /^Z/ && $NF == p && $(NF-1) ~ /kiln-watchdog$/ { print $1 }' || true
}
has_watchdog() { test -n "$(watchdog_of "$1")"; }
no_watchdog() { test -z "$(watchdog_of "$1")"; }
# running N PATTERN: N live marked processes whose command line has PATTERN
# (ps has ended before grep starts, so grep does not find itself)
running() { local a; a=$(alive); test "$(grep -cF -- "$2" <<<"$a")" -ge "$1"; }
# the group ids the watchdog reported killing, one per line
killed_groups() { sed -n 's/.*watchdog: .*killed [0-9]* process groups\{0,1\}: //p' "$1" | tr ' ' '\n'; }

echo "# kill -9 of kiln while its steps run"
mkdir -p vol
cat >kill.yaml <<EOF2
steps:
- id: quick
  script: echo \$\$ > quick.pgid
- id: bg
  waitFor: ['-']
  script: echo \$\$ > bg.pgid; $SLEEP 300 & $SLEEP 301
- id: noterm
  waitFor: ['-']
  script: echo \$\$ > noterm.pgid; sh -c 'trap "" TERM; $SLEEP 302'
- id: vol
  waitFor: ['-']
  volumes: [{name: vv, path: /kiln-orphans-$MARK}]
  script: $SLEEP 303
- id: never
  volumes: [{name: vv, path: /kiln-orphans-$MARK}]
  script: echo never
EOF2
"$KILN" run kill.yaml --max-parallel 8 >kill.out 2>&1 &
pid=$!
check "the background grandchild and its parent run" wait_for 60 running 2 "$MARK 30"
check "sleep 300 (background) runs" wait_for 60 running 1 "$MARK 300"
check "sleep 301 (foreground) runs" wait_for 60 running 1 "$MARK 301"
check "the child that ignores TERM runs" wait_for 60 running 1 "$MARK 302"
check "the step in a volume runs" wait_for 60 running 1 "$MARK 303"
check "the quick step ended first" wait_for 60 has_line kill.out "[quick] SUCCESS"
check "kiln has a watchdog" has_watchdog "$pid"
wd=$(watchdog_of "$pid")
kill -INT "$wd"; kill -TERM "$wd"; kill -HUP "$wd"; kill -QUIT "$wd"
sleep 0.2
check "the watchdog ignores INT, TERM, HUP and QUIT" has_watchdog "$pid"
check "the steps still run" running 4 "$MARK 30"
kill -9 "$pid"
rc=0
wait "$pid" 2>/dev/null || rc=$?
check "kiln died of SIGKILL (137)" test "$rc" = 137
check "no step process survives kiln's SIGKILL" wait_for 60 no_survivors
check "the watchdog exits after its work" wait_for 60 no_watchdog "$pid"
check "the watchdog says what it killed" wait_for 30 has_line kill.out "watchdog: kiln (pid $pid) ended while steps were running; killed 3 process groups"
check "it killed bg's group" grep -qx "$(cat bg.pgid)" <(killed_groups kill.out)
check "it killed noterm's group" grep -qx "$(cat noterm.pgid)" <(killed_groups kill.out)
check "it did not touch the ended step's group (forgotten)" eval '! grep -qx "$(cat quick.pgid)" <(killed_groups kill.out)'

echo "# kill -9 of the watchdog: kiln starts another one"
# kiln notices when it next writes to it: when the gate step ends, and then
# registers first's group again with the new one.
cat >wd.yaml <<EOF2
steps:
- id: first
  waitFor: ['-']
  script: $SLEEP 310 & $SLEEP 311
- id: gate
  waitFor: ['-']
  script: while [ ! -e go ]; do sleep 0.05; done
- id: third
  waitFor: [gate]
  script: $SLEEP 312
EOF2
"$KILN" run wd.yaml --max-parallel 4 >wd.out 2>&1 &
pid=$!
check "first step runs" wait_for 60 running 2 "$MARK 31"
check "kiln has a watchdog" wait_for 30 has_watchdog "$pid"
old=$(watchdog_of "$pid")
kill -KILL "$old"
check "the first watchdog is gone" wait_for 30 no_watchdog "$pid"
touch go
check "the third step runs" wait_for 60 running 1 "$MARK 312"
check "kiln says it started another watchdog" wait_for 30 has_line wd.out "the watchdog ended; started another one"
check "a new watchdog runs" wait_for 30 has_watchdog "$pid"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
check "the new watchdog also kills the groups started before it" wait_for 60 no_survivors
check "the new watchdog exits" wait_for 60 no_watchdog "$pid"
[ -n "$old" ] || fail "no watchdog was seen before"

echo "# normal ends leave nothing, not even the watchdog"
# run_bg OUT ARGS...: kiln in the background, its pid in $pid
run_bg() { local out=$1; shift; "$KILN" "$@" >"$out" 2>&1 & pid=$!; }
finished_clean() {
    local what=$1 out=$2 want=$3
    local rc=0
    wait "$pid" || rc=$?
    check "$what: exit $want" test "$rc" = "$want"
    check "$what: no step process survives" wait_for 60 no_survivors
    check "$what: the watchdog exits with kiln" wait_for 60 no_watchdog "$pid"
    check "$what: kiln ended every group itself" lacks_line "$out" "watchdog:"
}

cat >ok.yaml <<EOF2
steps:
- id: ok
  script: ($SLEEP 320 >/dev/null 2>&1 &); while [ ! -e ok.go ]; do sleep 0.05; done; echo done
EOF2
run_bg ok.out run ok.yaml
check "success: the watchdog runs" wait_for 30 has_watchdog "$pid"
check "success: the step's background process runs" wait_for 60 running 1 "$MARK 320"
touch ok.go
finished_clean success ok.out 0

cat >fail.yaml <<EOF2
steps:
- id: long
  waitFor: ['-']
  script: touch long.started; $SLEEP 321 & trap '' TERM; $SLEEP 322
- id: bad
  waitFor: ['-']
  script: while [ ! -e long.started ]; do sleep 0.05; done; exit 3
EOF2
run_bg fail.out run fail.yaml --max-parallel 4 --kill-grace 1s --report fail.json
finished_clean "failure cancels" fail.out 1
check "failure: the long step was cancelled" test "$(status fail.json long)" = CANCELLED

cat >timeout.yaml <<EOF2
steps:
- id: slow
  timeout: 1s
  script: $SLEEP 323 & trap '' TERM; $SLEEP 324
EOF2
run_bg timeout.out run timeout.yaml --kill-grace 1s --report to.json
finished_clean timeout timeout.out 1
check "timeout: the step timed out" test "$(status to.json slow)" = TIMEOUT

cat >int.yaml <<EOF2
steps:
- id: a
  script: touch int.started; $SLEEP 325 & trap '' TERM INT; $SLEEP 326
EOF2
setsid "$KILN" run int.yaml --kill-grace 1s >int.out 2>&1 &
pid=$!
check "Ctrl-C: the step runs" wait_for 60 running 2 "$MARK 32"
kill -INT -- -"$pid" # to kiln's process group, as a terminal does
finished_clean Ctrl-C int.out 130

echo "# processes that leave their step's process group (setsid)"
# setsid(1) makes a session, hence a group, of its own: the group kill at the
# step's end misses it; its KILN_PROCESS_TAG does not (runner/strays.h).
cat >daemon.yaml <<EOF2
# the pid file is written after setsid(): the step ends once the daemon
# has left its group, never before (its group is killed then)
steps:
- id: daemon
  script: |
    setsid sh -c 'echo \$\$ > daemon.pid; exec $SLEEP 340' </dev/null >/dev/null 2>&1 &
    for i in \$(seq 1200); do [ -s daemon.pid ] && break; sleep 0.05; done; echo started
- id: keep
  script: |
    env -u KILN_PROCESS_TAG setsid sh -c 'echo \$\$ > keep.pid; exec $SLEEP 341' </dev/null >/dev/null 2>&1 &
    for i in \$(seq 1200); do [ -s keep.pid ] && break; sleep 0.05; done; echo kept
- id: sees
  script: |
    kill -0 \$(cat daemon.pid) && echo the daemon outlives its step
    env | grep '^KILN_PROCESS_TAG=' | sed 's/=.*:\(.*\):\([0-9]*\)\$/= build \1 step \2/'
EOF2
rc=0
"$KILN" run daemon.yaml --max-parallel 1 --report daemon.json >daemon.out 2>&1 || rc=$?
check "setsid: the build succeeds" test "$rc" = 0
check "setsid: the daemon ran past its step" has_line daemon.out "the daemon outlives its step"
check "setsid: each step process carries its tag" grep -q "KILN_PROCESS_TAG= build .* step 2" daemon.out
check "setsid: kiln says it killed the daemon, and whose it was" grep -q "warning: kiln: step 'daemon' left process [0-9]* (sleep-kilnmark[^)]*) running outside its process group; killed it at the end of the build" daemon.out
check "setsid: the daemon is gone when kiln returns" eval '! running 1 "$MARK 340"'
check "setsid: a process that removed its tag was left alone" running 1 "$MARK 341"
pkill -f -- "$MARK 341" || true
check "setsid: nothing else survives" wait_for 60 no_survivors

cat >daemon9.yaml <<EOF2
steps:
- id: daemon
  script: |
    setsid sh -c 'echo \$\$ > daemon9.pid; exec $SLEEP 342' </dev/null >/dev/null 2>&1 &
    for i in \$(seq 1200); do [ -s daemon9.pid ] && break; sleep 0.05; done; echo started
- id: wait
  script: $SLEEP 343
EOF2
"$KILN" run daemon9.yaml --max-parallel 1 >daemon9.out 2>&1 &
pid=$!
check "kill -9: the daemon and the next step run" wait_for 60 running 1 "$MARK 343"
check "kill -9: the daemon runs" running 1 "$MARK 342"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
check "kill -9: the watchdog kills the daemon too" wait_for 60 no_survivors
check "kill -9: the watchdog says so" wait_for 30 grep -qE "watchdog: kiln \(pid $pid\) ended; killed [0-9]+ process(es)? that had left their step's process group: ([0-9]+ \([^)]*\), )*[0-9]+ \(sleep-kilnmark" daemon9.out

echo "# a group id kiln forgot is not killed when another process gets it"
# In a pid namespace of its own, a process is given the id of a group kiln
# made, reaped and forgot (ns_last_pid), then kiln is killed: the process
# must live on. Without the namespace no id can be chosen; then this part
# says so and is skipped.
cat >reuse.yaml <<EOF2
steps:
- id: quick
  script: echo \$\$ > reuse-quick.pgid
- id: long
  script: touch long2.started; $SLEEP 330
EOF2
cat >reuse.sh <<'EOF2'
set -u
"$KILN" run reuse.yaml >reuse.out 2>&1 &
k=$!
for _ in $(seq 600); do [ -e long2.started ] && break; sleep 0.05; done
q=$(cat reuse-quick.pgid)
echo $((q - 1)) >/proc/sys/kernel/ns_last_pid || exit 3
setsid "$SLEEP" 331 &
other=$!
[ "$other" = "$q" ] || { echo "got pid $other, not $q"; kill "$other"; exit 3; }
for _ in $(seq 600); do [ "$(ps -o pgid= -p "$other" | tr -d ' ')" = "$q" ] && break; sleep 0.05; done
kill -9 "$k"
wait "$k" 2>/dev/null
# This namespace's /proc: only its processes are seen. The watchdog kills,
# then exits; a killed process stays a zombie here until waited for.
for _ in $(seq 1200); do
    pgrep -x kiln-watchdog >/dev/null || break
    sleep 0.05
done
pgrep -x kiln-watchdog >/dev/null && { echo "the watchdog did not exit"; exit 1; }
state() { ps -o stat= -p "$1" | cut -c1; }
[ "$(state "$other")" = S ] || { echo "the process that reused group $q was killed"; exit 1; }
for _ in $(seq 1200); do
    pgrep -f -- "$MARK 330" >/dev/null || break
    sleep 0.05
done
pgrep -f -- "$MARK 330" >/dev/null && { echo "the long step survived"; exit 1; }
kill "$other"
echo "reused $q"
exit 0
EOF2
rc=0
if ! unshare -Urpf --mount-proc true 2>/dev/null; then
    echo "# skipped: cannot make a pid namespace here"
elif KILN=$KILN SLEEP=$SLEEP MARK=$MARK unshare -Urpf --mount-proc bash reuse.sh >reuse.log 2>&1 || rc=$?
    [ "$rc" = 3 ]; then
    echo "# skipped: cannot choose a pid in the namespace ($(tail -1 reuse.log))"
else
    check "a reused group id survives kiln's death; the step's group does not" test "$rc" = 0
    sed 's/^/  /' reuse.log
fi
check "after the namespace test: nothing survives" wait_for 60 no_survivors

finish
