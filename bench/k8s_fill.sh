#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fill=upload of the kubernetes executor on the fake cluster
# (tests/fakes/fake_k8s.py with its podman kubelet): the cost of sending a
# workspace of SIZE MiB of random bytes (gzip cannot shrink it) into the
# build's claim, against the raw limit on the same machine in the same run:
# `tar -czf` of the workspace to a file plus one `podman run --rm` of the
# same image unpacking it into a directory (what the fill does at least,
# without the API server). The fill's own cost is a one-step build with
# fill=upload less the same build with fill=none (one Pod less).
# Prints medians of RUNS rounds and the ratio.
#
#   bench/k8s_fill.sh [path/to/kiln]     (SIZE=32 RUNS=3)
# TRACE=FILE keeps the fill=upload run's output, each line with its time
# (packing, then the parts and the fill Pod, then the step).
# Needs root, podman, runc, busybox-static (as test_k8s_fill.sh).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
KILN=${1:-$SRC/build/runner/kiln}
SIZE=${SIZE:-32}
RUNS=${RUNS:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-fill.XXXXXX")
source "$SRC/bench/k8s_fake.sh"
IMG=localhost/kiln-bench-fill:1
bench_k8s_engine "$IMG" sh cat tar gzip true
bench_k8s_fake
printf 'steps:\n- {id: s, name: %s, entrypoint: "true"}\n' "$IMG" >"$W/p.yaml"
mkdir -p "$W/ws"
head -c $((SIZE * 1024 * 1024)) /dev/urandom >"$W/ws/blob"
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
EX="kubernetes:workspace=pvc,fillImage=$IMG,uploadLimit=$((SIZE * 2 + 8))"
t_raw=() t_up=() t_none=()
for r in $(seq "$RUNS"); do
    rm -rf "$W/out" && mkdir -p "$W/out"
    t0=$(now)
    tar -czf "$W/src.tgz" -C "$W/ws" .
    TMPDIR=$E/tmp podman run --rm --network host -v "$W/src.tgz:/src.tgz:ro" -v "$W/out:/workspace" \
        --entrypoint sh "$IMG" -c 'tar -xzof /src.tgz -C /workspace' >/dev/null
    t_raw+=("$(echo "$(now) - $t0" | bc)")
    t0=$(now)
    "$KILN" run "$W/p.yaml" --workspace "$W/ws" --executor "$EX,fill=upload" 2>&1 | while IFS= read -r l; do echo "$(date +%T.%N | cut -c1-12) $l"; done >"${TRACE:-/dev/null}"
    t_up+=("$(echo "$(now) - $t0" | bc)")
    t0=$(now)
    "$KILN" run "$W/p.yaml" --quiet --workspace "$W/ws" --executor "$EX" >/dev/null
    t_none+=("$(echo "$(now) - $t0" | bc)")
done
raw=$(printf '%s\n' "${t_raw[@]}" | median)
up=$(printf '%s\n' "${t_up[@]}" | median)
none=$(printf '%s\n' "${t_none[@]}" | median)
fill=$(echo "$up - $none" | bc)
printf 'SIZE=%s MiB RUNS=%s (medians)\n' "$SIZE" "$RUNS"
printf '  tar -czf + podman run unpacking   %6.2f s\n' "$raw"
printf '  kiln, one step, fill=upload       %6.2f s\n' "$up"
printf '  kiln, one step, no fill           %6.2f s\n' "$none"
printf '  the fill (difference)             %6.2f s  %.2fx of the raw limit (%.1f MiB/s)\n' "$fill" \
    "$(echo "$fill / $raw" | bc -l)" "$(echo "$SIZE / $fill" | bc -l)"
