#!/usr/bin/env bash
# Log sinks' throughput: LINES lines of LEN bytes (default 2 Mi lines of 64
# bytes, 128 MiB) printed by one step (`cat FILE`), through
#   - `sh -c 'cat FILE | cat > OUT'`                  (the peer: a bare pipe)
#   - `kiln run --quiet --log-dir DIR`                (the file sink)
#   - `kiln run --quiet --sink jsonl:path=OUT`         (the jsonl sink)
# and, with BEFORE=DIR, the jsonl sink of another build (its
# kiln-sink-jsonl.so in DIR, found first through KILN_PLUGIN_PATH).
# Rounds alternate the tools; every figure is the median of RUNS rounds.
# Outputs are removed and `sync` runs before each timed run, so that no run
# pays for the previous one's writeback. Each output is checked: the log file
# holds the input byte for byte, the jsonl file one JSON object per line with
# every line's text.
# Usage: bench/sinks.sh [BUILD_DIR]   (env: RUNS=5 LINES=2097152 LEN=64
#                                      BENCH_DIR=$TMPDIR BEFORE=)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/${1:-build}
kiln=$build/runner/kiln
runs=${RUNS:-5}
lines=${LINES:-2097152}
len=${LEN:-64}
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/kiln-sinks.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# One LEN-byte line repeated: yes(1) writes it as fast as cat reads.
pad=$(printf '%*s' $((len - 26)) '' | tr ' ' x)
{ yes "kiln sink benchmark line $pad" || true; } | head -n "$lines" > input
bytes=$(stat -c %s input)
[ "$bytes" = $((lines * len)) ] || { echo "sinks.sh: input has $bytes bytes" >&2; exit 1; }
printf 'steps:\n- id: gen\n  args: [cat, %s]\n' "$work/input" > p.yaml

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# run NAME CMD...: one timed run; wall seconds appended to NAME.t, CPU
# seconds (user + system, with children) to NAME.cpu
run() {
    local name=$1; shift
    rm -rf out logs; sync
    local t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o cpu.tmp "$@" >/dev/null 2>run.err ||
        { echo "sinks.sh: $name failed:" >&2; cat run.err >&2; exit 1; }
    local t1=$EPOCHREALTIME
    echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}' >> "$name.t"
    awk '{printf "%.2f\n", $1 + $2}' cpu.tmp >> "$name.cpu"
}
check_file() { cmp -s input logs/gen.log || { echo "sinks.sh: the log file differs from the input" >&2; exit 1; }; }
check_jsonl() {
    python3 - "$lines" <<'PY' || { echo "sinks.sh: bad jsonl output" >&2; exit 1; }
import json, sys
want = int(sys.argv[1]); n = 0
with open("input", "rb") as f:
    text = f.readline().decode().rstrip("\n")
for l in open("out", encoding="utf-8"):
    j = json.loads(l)
    if "seq" in j:
        n += 1
        assert j["text"] == text and j["seq"] == n
assert n == want, (n, want)
PY
}

for r in $(seq "$runs"); do
    run cat sh -c "cat input | cat > out"
    cmp -s input out || { echo "sinks.sh: cat's output differs" >&2; exit 1; }
    run file "$kiln" run p.yaml --quiet --log-dir logs
    [ "$r" = 1 ] && check_file
    run jsonl "$kiln" run p.yaml --quiet --sink jsonl:path=out
    [ "$r" = 1 ] && check_jsonl
    if [ -n "${BEFORE:-}" ]; then
        run before env KILN_PLUGIN_PATH="$BEFORE" "$kiln" run p.yaml --quiet --sink jsonl:path=out
    fi
done
jsonl_bytes=$(stat -c %s out)
c=$(median < cat.t) f=$(median < file.t) j=$(median < jsonl.t)
echo "kiln: $kiln; $lines lines of $len bytes ($bytes bytes; jsonl output $jsonl_bytes bytes); medians of $runs rounds"
row() { printf '%-34s %8s s  (CPU %s s)\n' "$1" "$(median < "$2.t")" "$(median < "$2.cpu")"; }
row "cat | cat > file" cat
row "kiln --log-dir (file sink)" file
row "kiln --sink jsonl" jsonl
[ -n "${BEFORE:-}" ] && row "kiln --sink jsonl (BEFORE)" before
awk -v c="$c" -v f="$f" -v j="$j" 'BEGIN {
    printf "jsonl / file: %.2fx   jsonl / cat: %.2fx   file / cat: %.2fx\n", j / f, j / c, f / c }'
[ -n "${BEFORE:-}" ] && awk -v b="$(median < before.t)" -v f="$f" 'BEGIN { printf "before / file: %.2fx\n", b / f }'
echo "all rounds (s): cat $(tr '\n' ' ' < cat.t)| file $(tr '\n' ' ' < file.t)| jsonl $(tr '\n' ' ' < jsonl.t)"
exit 0
