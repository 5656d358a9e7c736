#!/usr/bin/env bash
# What Cloud Build volumes cost per step: the same 200-step chain of `true`
# with and without a volume shared by every step, and the raw cost of
# kiln-mount-exec against a bare exec, in the same run. Medians of 5.
# Usage: bench/volumes.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/${1:-build}
kiln=$build/runner/kiln
helper=$build/runner/kiln-mount-exec
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
n=200
gen() { # gen FILE [VOLUME-YAML]
    echo "steps:" > "$1"
    for i in $(seq 0 $((n - 1))); do
        echo "- {id: s$i, name: ubuntu, args: ['true']$2}" >> "$1"
    done
}
gen plain.yaml ""
gen vols.yaml ", volumes: [{name: cache, path: /kiln-bench-cache}]"
"$kiln" run --quiet plain.yaml >/dev/null 2>&1 && "$kiln" run --quiet vols.yaml >/dev/null 2>&1  # both must pass
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
runs=5
p=$(for _ in $(seq $runs); do time_ms "$kiln" run --quiet plain.yaml; done | median)
v=$(for _ in $(seq $runs); do time_ms "$kiln" run --quiet vols.yaml; done | median)
mkdir -p root vol
loop() { for _ in $(seq $n); do "$@"; done; }
b=$(for _ in $(seq $runs); do time_ms loop /bin/true; done | median)
h=$(for _ in $(seq $runs); do time_ms loop "$helper" --root "$work/root" --vol "$work/vol" /kiln-bench-cache -- /bin/true; done | median)
awk -v n=$n -v p="$p" -v v="$v" -v b="$b" -v h="$h" -v who="$(id -un)" 'BEGIN {
    printf "%d-step chain of true, as %s (medians of 5):\n", n, who
    printf "  kiln, no volumes:   %5d ms (%.2f ms/step)\n", p, p / n
    printf "  kiln, one volume:   %5d ms (%.2f ms/step, +%.2f ms/step, %.2fx)\n", v, v / n, (v - p) / n, v / p
    printf "  bare exec loop:     %5d ms (%.2f ms/process)\n", b, b / n
    printf "  kiln-mount-exec:    %5d ms (%.2f ms/process, +%.2f ms)\n", h, h / n, (h - b) / n
}'
