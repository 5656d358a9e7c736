#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cloud Build's concurrency with kiln's defaults: every ready step starts
# (up to the documented cap of 32), whatever the number of CPUs. Proved by a
# rendezvous (each step waits until all the others have started), not by
# timing; the cap is proved by counting the steps running at once.
source "$(dirname "$0")/lib.sh"

# rendezvous N: a pipeline of N `waitFor: ['-']` steps; each announces itself
# and waits until all N have announced. A step that cannot start until
# another ends makes the build wait until the 120 s deadline, then fail.
rendezvous() {
    echo "steps:"
    for i in $(seq "$1"); do
        cat <<EOF
- id: s$i
  waitFor: ['-']
  script: |
    touch here.s$i
    for i in \$(seq 1200); do [ \$(ls here.* | wc -l) -ge $1 ] && exit 0; sleep 0.1; done
    echo "only \$(ls here.* | wc -l) of $1 steps started"; exit 1
EOF
    done
}

echo "# a server step, a step polling it and a third: all three start (2 CPUs here or not)"
cat >server.yaml <<'EOF'
steps:
- id: server
  waitFor: ['-']
  script: |
    touch server.up
    for i in $(seq 1200); do [ -e client.done ] && exit 0; sleep 0.1; done
    exit 1
- id: client
  waitFor: ['-']
  script: |
    for i in $(seq 1200); do [ -e server.up ] && [ -e third.ran ] && touch client.done && exit 0; sleep 0.1; done
    exit 1
- id: third
  waitFor: ['-']
  script: |
    touch third.ran
    for i in $(seq 1200); do [ -e client.done ] && exit 0; sleep 0.1; done
    exit 1
EOF
rc=$(run_kiln out.txt run server.yaml --report r.json)
check "three ready steps on $(nproc) CPUs: exit 0" test "$rc" = 0
check "server step SUCCESS" test "$(status r.json server)" = SUCCESS
check "no note about waiting steps" lacks_line out.txt "wait for a free slot"

echo "# 32 ready steps all run at once by default"
rm -f here.*
rendezvous 32 >r32.yaml
rc=$(run_kiln out.txt run r32.yaml --quiet --report r.json)
check "32-step rendezvous: exit 0" test "$rc" = 0
check "32-step rendezvous: s32 SUCCESS" test "$(status r.json s32)" = SUCCESS

echo "# the default cap: 40 steps, at most 32 at once, and kiln says why 8 wait"
cat >cap.yaml <<'EOF'
steps:
EOF
for i in $(seq 40); do
    cat >>cap.yaml <<EOF
- id: c$i
  waitFor: ['-']
  script: |
    mkdir -p run; touch run/c$i
    ls run | wc -l >>counts
    sleep 0.3
    rm run/c$i
EOF
done
rc=$(run_kiln out.txt run cap.yaml --report r.json)
check "40 steps: exit 0" test "$rc" = 0
check "40 steps: every step ran" test "$(wc -l <counts)" = 40
check "40 steps: never more than 32 running" test "$(sort -n counts | tail -1)" -le 32
check "40 steps: the note names the cap and how to change it" \
    has_line out.txt "8 ready steps wait for a free slot: kiln runs at most 32 steps at once by default (--max-parallel N or options.maxParallel to change it)"

echo "# --max-parallel and options.maxParallel still cap, without the note"
rm -f counts
rc=$(run_kiln out.txt run cap.yaml --max-parallel 3 --report r.json)
check "--max-parallel 3: exit 0" test "$rc" = 0
check "--max-parallel 3: never more than 3 running" test "$(sort -n counts | tail -1)" -le 3
check "--max-parallel 3: no note" lacks_line out.txt "wait for a free slot"
rm -f counts
{ echo "options: {maxParallel: 2}"; cat cap.yaml; } >cap2.yaml
rc=$(run_kiln out.txt run cap2.yaml --report r.json)
check "maxParallel: 2: exit 0" test "$rc" = 0
check "maxParallel: 2: never more than 2 running" test "$(sort -n counts | tail -1)" -le 2

finish
