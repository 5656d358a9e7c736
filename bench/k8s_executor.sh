#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The kubernetes executor on the fake cluster (tests/fakes/fake_k8s.py with
# its podman kubelet): the wall time of N steps that only echo, as Pods,
# against the raw limit on the same machine in the same run, `podman run
# --rm` of the same image N times (what the fake's kubelet does at least),
# and against the local executor. Prints medians of RUNS rounds and ratios.
#
#   bench/k8s_executor.sh [path/to/kiln]     (N=10 RUNS=3 PAR=1)
# PAR>1 runs the N steps PAR at a time (waitFor: ['-'] and --max-parallel).
# The kubernetes runs go twice: without and with kiln-pod-helper
# (helperImage=, an init container more per Pod; build/tools/kiln-pod-helper).
# LINES=n makes each step print n lines instead of one (the log path's cost).
# Needs root, podman, runc, busybox-static (as test_k8s_executor.sh).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
KILN=${1:-$SRC/build/runner/kiln}
N=${N:-10}
RUNS=${RUNS:-3}
PAR=${PAR:-1}
LINES=${LINES:-1}
HELPER=${HELPER:-$SRC/build/tools/kiln-pod-helper/kiln-pod-helper}
W=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-k8s.XXXXXX")
source "$SRC/bench/k8s_fake.sh"
IMG=localhost/kiln-bench-busybox:1
bench_k8s_engine "$IMG" sh
mkdir -p "$E/helper"
cp "$HELPER" "$E/helper/kiln-pod-helper"
tar -C "$E/helper" -cf "$E/helper.tar" .
HIMG=localhost/kiln-pod-helper:bench
TMPDIR=$E/tmp podman import "$E/helper.tar" "$HIMG" >/dev/null
bench_k8s_fake
{
    echo "steps:"
    for i in $(seq "$N"); do
        echo "- {id: s$i, name: $IMG, entrypoint: sh, args: ['-c', 'i=0; while [ \$\$i -lt $LINES ]; do echo step-$i-\$\$i; i=\$\$((i+1)); done']$([ "$PAR" -gt 1 ] && echo ", waitFor: ['-']")}"
    done
} >"$W/p.yaml"
mkdir -p "$W/ws"
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t_raw=() t_k8s=() t_helper=() t_local=()
for r in $(seq "$RUNS"); do
    t0=$(now)
    seq "$N" | xargs -P "$PAR" -I{} sh -c "TMPDIR=$E/tmp podman run --rm --network host --entrypoint sh $IMG -c 'echo step-{}' >/dev/null"
    t_raw+=("$(echo "$(now) - $t0" | bc)")
    t0=$(now)
    "$KILN" run "$W/p.yaml" --quiet --workspace "$W/ws" --max-parallel "$PAR" --executor kubernetes >/dev/null
    t_k8s+=("$(echo "$(now) - $t0" | bc)")
    t0=$(now)
    "$KILN" run "$W/p.yaml" --quiet --workspace "$W/ws" --max-parallel "$PAR" \
        --executor "kubernetes:helperImage=$HIMG" >/dev/null
    t_helper+=("$(echo "$(now) - $t0" | bc)")
    t0=$(now)
    "$KILN" run "$W/p.yaml" --quiet --workspace "$W/ws" --max-parallel "$PAR" >/dev/null 2>&1 || true
    t_local+=("$(echo "$(now) - $t0" | bc)")
done
raw=$(printf '%s\n' "${t_raw[@]}" | median)
k8s=$(printf '%s\n' "${t_k8s[@]}" | median)
loc=$(printf '%s\n' "${t_local[@]}" | median)
hlp=$(printf '%s\n' "${t_helper[@]}" | median)
printf 'N=%s PAR=%s RUNS=%s LINES=%s (medians)\n' "$N" "$PAR" "$RUNS" "$LINES"
printf '  podman run --rm x N   %6.2f s  (%.2f s per step)\n' "$raw" "$(echo "$raw / $N" | bc -l)"
printf '  kiln, kubernetes      %6.2f s  (%.2f s per step)  %.2fx of podman run\n' "$k8s" "$(echo "$k8s / $N" | bc -l)" "$(echo "$k8s / $raw" | bc -l)"
printf '  kiln, k8s + helper    %6.2f s  (%.2f s per step)  %.2fx of podman run, %.2fx of no helper\n' "$hlp" "$(echo "$hlp / $N" | bc -l)" "$(echo "$hlp / $raw" | bc -l)" "$(echo "$hlp / $k8s" | bc -l)"
printf '  kiln, local           %6.2f s\n' "$loc"
