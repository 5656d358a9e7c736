#!/usr/bin/env bash
# kiln's benchmark suite, in one go; see bench/README.md.
#
#   bench/run.sh [KILN]        KILN defaults to build/runner/kiln (a Release build)
#
# Environment: COUNT (steps per DAG, 2000), RUNS (runs per command, 3),
# BYTES (throughput volume, 1 GiB), JOBS (parallelism, nproc), ONLY (a
# space-separated subset of: indep chain chain_all throughput), KEEP=1 keeps
# the scratch directory, BENCH_DIR puts it somewhere else than $TMPDIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kiln=$(realpath "${1:-$root/build/runner/kiln}")
count=${COUNT:-2000}
runs=${RUNS:-3}
bytes=${BYTES:-1073741824}
jobs=${JOBS:-$(nproc)}
only=${ONLY:-indep chain chain_all throughput}

for tool in hyperfine ninja make cc cmp awk; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (scripts/install-deps.sh)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (Debian package 'time')" >&2; exit 2; }
[ -x "$kiln" ] || { echo "bench: no kiln at $kiln; build it first (see bench/README.md)" >&2; exit 2; }

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/kiln-bench.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work/ws" "$work/rss"

cc -O2 -o "$work/spawn_loop" "$root/bench/spawn_loop.c"
cc -O2 -o "$work/gen_lines" "$root/bench/gen_lines.c"
"$root/bench/gen_graphs.sh" "$work" "$count"

# One row of results per (scenario, tool): median seconds and peak RSS (KiB).
results=$work/results
: >"$results"

# bench NAME SCENARIO PREPARE CMD: RUNS timed runs of CMD under hyperfine, each
# under /usr/bin/time -v for its peak RSS.
bench() {
  local name=$1 scen=$2 prep=$3 cmd=$4
  local rss=$work/rss/$scen.$name csv=$work/$scen.$name.csv
  echo "  $name: $cmd" >&2
  hyperfine --runs "$runs" --style basic --export-csv "$csv" --prepare "$prep" \
    -n "$name" "/usr/bin/time -v -a -o $rss $cmd" >&2
  local median peak
  median=$(awk -F, 'NR == 2 { print $4 }' "$csv")
  peak=$(awk -F: '/Maximum resident set size/ { v = $2 + 0; if (v > m) m = v } END { print m }' "$rss")
  echo "$scen $name $median $peak" >>"$results"
}

dag() {
  local scen=$1 spawn_jobs=$jobs
  [ "$scen" = indep ] || spawn_jobs=1
  echo "== $scen: $count steps, parallelism $jobs" >&2
  bench kiln "$scen" true \
    "$kiln run $work/kiln-$scen.yaml --max-parallel $jobs --quiet --workspace $work/ws"
  bench ninja "$scen" "rm -f $work/ninja-$scen/.ninja_log $work/ninja-$scen/.ninja_deps" \
    "ninja -C $work/ninja-$scen -j $jobs"
  bench make "$scen" true "make -s -C $work/make-$scen -j $jobs"
  bench spawn_pipes "$scen" true "$work/spawn_loop -p $count $spawn_jobs true"
  bench spawn "$scen" true "$work/spawn_loop $count $spawn_jobs true"
}

throughput() {
  echo "== throughput: $bytes bytes of 32-byte lines" >&2
  printf 'steps:\n- id: gen\n  args: ["%s", "%s"]\n' "$work/gen_lines" "$bytes" >"$work/kiln-tp.yaml"
  bench cat throughput "rm -f $work/cat.out" "sh -c '$work/gen_lines $bytes | cat > $work/cat.out'"
  local got
  got=$(stat -c %s "$work/cat.out")
  [ "$got" = "$bytes" ] || { echo "bench: cat wrote $got bytes, expected $bytes" >&2; exit 1; }
  bench kiln throughput "rm -rf $work/logs" \
    "$kiln run $work/kiln-tp.yaml --quiet --log-dir $work/logs --workspace $work/ws"
  got=$(stat -c %s "$work/logs/gen.log")
  if [ "$got" != "$bytes" ]; then
    echo "bench: kiln's log file holds $got bytes, expected $bytes (output lost)" >&2
    exit 1
  fi
  cmp "$work/cat.out" "$work/logs/gen.log" || { echo "bench: kiln's log differs from cat's copy" >&2; exit 1; }
  rm -rf "$work/cat.out" "$work/logs"
}

for s in $only; do
  case $s in
    indep | chain | chain_all) dag "$s" ;;
    throughput) throughput ;;
    *) echo "bench: unknown scenario '$s'" >&2; exit 2 ;;
  esac
done

# ---- summary -------------------------------------------------------------
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "machine: $(nproc) CPUs ($cpu), $(uname -sr); $runs runs per command, medians"
echo "kiln: $kiln"
awk -v count="$count" -v jobs="$jobs" -v bytes="$bytes" '
  { t[$1, $2] = $3; m[$1, $2] = $4; seen[$1] = 1 }
  function ms(x) { return x == "" ? "-" : sprintf("%.0f", x * 1000) }
  function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
  function verdict(ok) { return ok ? "met" : "MISSED" }
  END {
    printf "\n%-10s %8s %8s %8s %8s %8s %8s %8s %9s\n", "scenario", "kiln", "ninja", "make",
      "spawn+p", "spawn", "k/ninja", "k/spawn+p", "kiln RSS"
    printf "%-10s %8s %8s %8s %8s %8s %8s %8s %9s\n", "", "ms", "ms", "ms", "ms", "ms", "", "", "MiB"
    n = split("indep chain chain_all", sc, " ")
    for (i = 1; i <= n; i++) {
      s = sc[i]
      if (!((s, "kiln") in t)) continue
      printf "%-10s %8s %8s %8s %8s %8s %8s %8s %9.1f\n", s, ms(t[s, "kiln"]), ms(t[s, "ninja"]),
        ms(t[s, "make"]), ms(t[s, "spawn_pipes"]), ms(t[s, "spawn"]),
        ratio(t[s, "kiln"], t[s, "ninja"]), ratio(t[s, "kiln"], t[s, "spawn_pipes"]),
        m[s, "kiln"] / 1024
    }
    if (("throughput", "kiln") in t) {
      mb = bytes / 1e6
      printf "\nthroughput (%d bytes of 32-byte lines to a file):\n", bytes
      printf "  cat > file     %8.0f MB/s  (%s ms)\n", mb / t["throughput", "cat"], ms(t["throughput", "cat"])
      printf "  kiln --log-dir %8.0f MB/s  (%s ms), %.0f%% of cat, peak RSS %.1f MiB\n",
        mb / t["throughput", "kiln"], ms(t["throughput", "kiln"]),
        100 * t["throughput", "cat"] / t["throughput", "kiln"], m["throughput", "kiln"] / 1024
    }
    print "\ntargets:"
    for (i = 1; i <= n; i++) {
      s = sc[i]
      if (!((s, "kiln") in t)) continue
      printf "  %-10s kiln <= ninja: %s (%.2fx); kiln <= 1.2x spawn loop with pipes: %s (%.2fx)\n", s,
        verdict(t[s, "kiln"] <= t[s, "ninja"]), t[s, "kiln"] / t[s, "ninja"],
        verdict(t[s, "kiln"] <= 1.2 * t[s, "spawn_pipes"]), t[s, "kiln"] / t[s, "spawn_pipes"]
    }
    if (("throughput", "kiln") in t)
      printf "  throughput kiln >= 60%% of cat: %s (%.0f%%)\n",
        verdict(t["throughput", "cat"] / t["throughput", "kiln"] >= 0.6),
        100 * t["throughput", "cat"] / t["throughput", "kiln"]
  }' "$results"
