#!/usr/bin/env bash
# Sink throughput on a chatty step: kiln's console sink and file sink against
# cat on the same input, in the same run; see bench/README.md ("Console and
# file sinks").
#
#   bench/console.sh [KILN]     KILN defaults to build/runner/kiln (Release)
#
# The input is LINES lines of 64 bytes (default 2,000,000: 128 MB), numbered
# so that a lost or reordered line shows. One kiln step runs `cat FILE`.
# Pairs (each pair runs back to back, the order alternating between rounds):
#
#   null     cat FILE > /dev/null            kiln run (console) > /dev/null
#            (and cat FILE | cat > /dev/null: the same pipe kiln reads)
#   console  cat FILE | cat > OUT            kiln run (console) > OUT
#   file     cat FILE | cat > OUT            kiln run --quiet --log-dir DIR
#
# Every figure is the median of RUNS (7) pairs; the ratio is kiln's time over
# cat's (the target: <= 1/0.6 = 1.67x, i.e. at least 60% of cat's throughput).
# Environment: RUNS, LINES, ONLY (a subset of "null console file"), BENCH_DIR,
# BASELINE=path/to/other/kiln (runs it in every round too: before/after).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kiln=$(realpath "${1:-$root/build/runner/kiln}")
runs=${RUNS:-7}
lines=${LINES:-2000000}
only=${ONLY:-null console file}
baseline=${BASELINE:+$(realpath "$BASELINE")}
[ -x "$kiln" ] || { echo "bench: no kiln at $kiln; build it first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (Debian package 'time')" >&2; exit 2; }

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/kiln-console.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ws"

# 24 + 39 + 1 = 64 bytes a line.
awk -v n="$lines" 'BEGIN { for (i = 0; i < n; i++) printf "kiln console bench line %039d\n", i }' \
  >"$work/lines"
bytes=$(stat -c %s "$work/lines")
printf 'steps:\n- id: cat\n  args: ["cat", "%s"]\n' "$work/lines" >"$work/step.yaml"

results=$work/results
: >"$results"

# measure SCEN TOOL ROUND CMD...: one run; wall time from bash's clock, CPU
# (user + system, with children) from /usr/bin/time.
measure() {
  local scen=$1 tool=$2 round=$3 out=$4
  shift 4
  local t0 t1 u s
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%U %S' -o "$work/time" "$@" >"$out" 2>"$work/err" ||
    { echo "bench: $scen $tool failed:" >&2; tail "$work/err" >&2; exit 1; }
  t1=$EPOCHREALTIME
  read -r u s <"$work/time"
  echo "$scen $tool $round $t0 $t1 $u $s" | awk '{ printf "%s %s %s %.4f %.2f\n", $1, $2, $3, $5 - $4, $6 + $7 }' >>"$results"
}

check_console() {
  # Every line, prefixed, in order, between kiln's start and end lines.
  sed -n '2,'$((lines + 1))'p' "$work/out" | sed 's/^\[cat\] //' | cmp -s - "$work/lines" ||
    { echo "bench: kiln's console output differs from the input" >&2; exit 1; }
}

run_cat() {
  local scen=$1 round=$2
  case $scen in
  null)
    measure null cat "$round" /dev/null cat "$work/lines"
    measure null pipe "$round" /dev/null sh -c "cat '$work/lines' | cat" ;;
  *) measure "$scen" cat "$round" "$work/out" sh -c "cat '$work/lines' | cat"; rm -f "$work/out" ;;
  esac
}

# run_kiln SCEN ROUND [TOOL BINARY]: kiln, or the BASELINE kiln.
run_kiln() {
  local scen=$1 round=$2 tool=${3:-kiln} bin=${4:-$kiln}
  case $scen in
  null) measure null "$tool" "$round" /dev/null "$bin" run "$work/step.yaml" --workspace "$work/ws" ;;
  console)
    measure console "$tool" "$round" "$work/out" "$bin" run "$work/step.yaml" --workspace "$work/ws"
    [ "$round" != 1 ] || check_console
    rm -f "$work/out" ;;
  file)
    rm -rf "$work/logs"
    measure file "$tool" "$round" /dev/null "$bin" run "$work/step.yaml" --quiet --log-dir "$work/logs" \
      --workspace "$work/ws"
    [ "$round" != 1 ] || cmp -s "$work/logs/cat.log" "$work/lines" ||
      { echo "bench: kiln's log file differs from the input" >&2; exit 1; }
    rm -rf "$work/logs" ;;
  esac
}

echo "== $lines lines of 64 bytes ($bytes bytes), $runs paired runs: $kiln" >&2
for ((r = 1; r <= runs; r++)); do
  for s in $only; do
    # Each pair back to back; which goes first alternates.
    if ((r % 2)); then run_cat "$s" "$r"; run_kiln "$s" "$r"
    else run_kiln "$s" "$r"; run_cat "$s" "$r"; fi
    [ -z "$baseline" ] || run_kiln "$s" "$r" base "$baseline"
  done
done

awk -v bytes="$bytes" '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { w[$1, $2, $3] = $4; c[$1, $2, $3] = $5; rounds[$1] = $3 > rounds[$1] ? $3 : rounds[$1] }
  END {
    split("null console file", order, " ")
    label["null"] = "console > /dev/null   (cat > /dev/null)"
    label["console"] = "console > file        (cat | cat > file)"
    label["file"] = "--quiet --log-dir      (cat | cat > file)"
    printf "%-40s %8s %8s %8s %8s %7s %9s\n", "kiln vs cat, medians", "cat s", "kiln s", "cat cpu", "kiln cpu", "ratio", "of cat"
    for (k = 1; k <= 3; k++) {
      s = order[k]; n = rounds[s]
      if (!n) continue
      for (r = 1; r <= n; r++) {
        a[r] = w[s, "cat", r]; b[r] = w[s, "kiln", r]; x[r] = w[s, "kiln", r] / w[s, "cat", r]
        ca[r] = c[s, "cat", r]; cb[r] = c[s, "kiln", r]
      }
      ratio = median(x, n)
      printf "%-40s %8.3f %8.3f %8.2f %8.2f %6.2fx %8.0f%%  %s\n", label[s], median(a, n), median(b, n),
        median(ca, n), median(cb, n), ratio, 100 / ratio, ratio <= 1 / 0.6 ? "ok" : "BELOW 60%"
      if ((s, "pipe", 1) in w) {
        for (r = 1; r <= n; r++) { a[r] = w[s, "pipe", r]; x[r] = w[s, "kiln", r] / w[s, "pipe", r]; ca[r] = c[s, "pipe", r] }
        ratio = median(x, n)
        printf "%-40s %8.3f %8s %8.2f %8s %6.2fx %8.0f%%  %s\n", "  same, against cat | cat > /dev/null", median(a, n), "",
          median(ca, n), "", ratio, 100 / ratio, ratio <= 1 / 0.6 ? "ok" : "BELOW 60%"
      }
      if ((s, "base", 1) in w) {
        for (r = 1; r <= n; r++) { b[r] = w[s, "base", r]; x[r] = w[s, "base", r] / w[s, "cat", r]; cb[r] = c[s, "base", r] }
        ratio = median(x, n)
        printf "%-40s %8s %8.3f %8s %8.2f %6.2fx %8.0f%%\n", "  baseline kiln, same rounds", "", median(b, n), "",
          median(cb, n), ratio, 100 / ratio
      }
    }
    printf "(ratio: median over the pairs of kiln time / cat time; \"of cat\": throughput relative to cat)\n"
  }' "$results"
