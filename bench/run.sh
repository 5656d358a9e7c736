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

for tool in ninja make cc cmp awk; do
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

# Results: one line per run: SCENARIO TOOL WALL_S CPU_S PEAK_RSS_KIB.
results=$work/results
: >"$results"

# measure SCENARIO TOOL PREPARE CMD...: one timed run. Wall time from bash's
# clock around /usr/bin/time -v, which gives the peak RSS and the CPU time
# (user + system of the command and the children it waited for).
measure() {
  local scen=$1 name=$2 prep=$3
  shift 3
  eval "$prep"
  local tv=$work/time.out t0 t1
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -v -o "$tv" "$@" >"$work/out.log" 2>&1; then
    echo "bench: $name failed in $scen:" >&2
    tail -20 "$work/out.log" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  awk -v s="$scen" -v n="$name" -v t0="$t0" -v t1="$t1" -F': ' '
    /User time/ { c += $2 } /System time/ { c += $2 } /Maximum resident/ { m = $2 }
    END { printf "%s %s %.4f %.2f %d\n", s, n, t1 - t0, c, m }' "$tv" >>"$results"
}

# round SCENARIO: every tool once. Rounds alternate the tools so that load
# from elsewhere on a shared machine spreads over all of them.
dag_round() {
  local scen=$1 sj=$jobs
  [ "$scen" = indep ] || sj=1
  measure "$scen" kiln : "$kiln" run "$work/kiln-$scen.yaml" --max-parallel "$jobs" --quiet \
    --workspace "$work/ws"
  measure "$scen" ninja "rm -f $work/ninja-$scen/.ninja_log" ninja -C "$work/ninja-$scen" -j "$jobs"
  measure "$scen" make : make -s -C "$work/make-$scen" -j "$jobs"
  measure "$scen" spawn_pipes : "$work/spawn_loop" -p "$count" "$sj" true
  measure "$scen" spawn : "$work/spawn_loop" "$count" "$sj" true
}

tp_round() {
  measure throughput cat "rm -f $work/cat.out" \
    sh -c "'$work/gen_lines' $bytes | cat > '$work/cat.out'"
  local got
  got=$(stat -c %s "$work/cat.out")
  [ "$got" = "$bytes" ] || { echo "bench: cat wrote $got bytes, expected $bytes" >&2; exit 1; }
  rm -f "$work/cat.out"
  measure throughput kiln "rm -rf $work/logs" "$kiln" run "$work/kiln-tp.yaml" --quiet \
    --log-dir "$work/logs" --workspace "$work/ws"
  got=$(stat -c %s "$work/logs/gen.log")
  if [ "$got" != "$bytes" ]; then
    echo "bench: kiln's log file holds $got bytes, expected $bytes (output lost)" >&2
    exit 1
  fi
  # Content too, once: the file sink must keep every line, in order.
  if [ ! -e "$work/tp-checked" ]; then
    "$work/gen_lines" "$bytes" | cmp - "$work/logs/gen.log" ||
      { echo "bench: kiln's log differs from the generator's output" >&2; exit 1; }
    touch "$work/tp-checked"
  fi
  rm -rf "$work/logs"
}

printf 'steps:\n- id: gen\n  args: ["%s", "%s"]\n' "$work/gen_lines" "$bytes" >"$work/kiln-tp.yaml"
for s in $only; do
  case $s in
    indep | chain | chain_all) echo "== $s: $count steps, parallelism $jobs, $runs rounds" >&2 ;;
    throughput) echo "== throughput: $bytes bytes of 32-byte lines, $runs rounds" >&2 ;;
    *) echo "bench: unknown scenario '$s'" >&2; exit 2 ;;
  esac
  for ((r = 1; r <= runs; r++)); do
    before=$(wc -l <"$results")
    if [ "$s" = throughput ]; then tp_round; else dag_round "$s"; fi
    echo "   round $r: $(tail -n +$((before + 1)) "$results" | awk '{ printf "%s %.2fs  ", $2, $3 }')" >&2
  done
done
cp "$results" "${RESULTS:-/dev/null}" 2>/dev/null || true

# ---- summary -------------------------------------------------------------
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "machine: $(nproc) CPUs ($cpu), $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kiln: $kiln; $count steps, parallelism $jobs; medians of $runs runs"
sort -k1,1 -k2,2 -k3,3n "$results" | awk -v bytes="$bytes" '
  { k = $1 SUBSEP $2; n[k]++; w[k, n[k]] = $3; c[k, n[k]] = $4; if ($5 > m[k]) m[k] = $5 }
  function med(a, k,   i, j, t, v, cnt) {
    cnt = n[k]
    for (i = 1; i <= cnt; i++) v[i] = a[k, i]
    for (i = 2; i <= cnt; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
  }
  function W(s, t) { return ((s, t) in n) ? med(w, s SUBSEP t) : "" }
  function C(s, t) { return ((s, t) in n) ? med(c, s SUBSEP t) : "" }
  function sec(x) { return x == "" ? "-" : sprintf("%.2f", x) }
  function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2fx", a / b) }
  function verdict(ok) { return ok ? "met" : "MISSED" }
  END {
    split("indep chain chain_all", sc, " ")
    if (("indep", "kiln") in n || ("chain", "kiln") in n || ("chain_all", "kiln") in n) {
      printf "\nwall time, s (CPU time of the run and its children, s)\n"
      printf "%-10s %13s %13s %13s %13s %13s %8s %9s %8s\n", "scenario", "kiln", "ninja", "make",
        "spawn+pipes", "spawn", "k/ninja", "k/spawn+p", "kiln RSS"
    }
    for (i = 1; i <= 3; i++) {
      s = sc[i]
      if (!((s, "kiln") in n)) continue
      line = sprintf("%-10s", s)
      split("kiln ninja make spawn_pipes spawn", tl, " ")
      for (j = 1; j <= 5; j++)
        line = line sprintf(" %6s (%4s)", sec(W(s, tl[j])), sec(C(s, tl[j])))
      printf "%s %8s %9s %6.1f MiB\n", line, ratio(W(s, "kiln"), W(s, "ninja")),
        ratio(W(s, "kiln"), W(s, "spawn_pipes")), m[s, "kiln"] / 1024
    }
    if (("throughput", "kiln") in n) {
      mb = bytes / 1e6
      tc = W("throughput", "cat"); tk = W("throughput", "kiln")
      printf "\nthroughput, %d bytes of 32-byte lines into a file:\n", bytes
      printf "  gen | cat > file        %5.0f MB/s  %6.2f s (CPU %s s)\n", mb / tc, tc, sec(C("throughput", "cat"))
      printf "  kiln --log-dir --quiet  %5.0f MB/s  %6.2f s (CPU %s s), %.0f%% of cat, peak RSS %.1f MiB\n",
        mb / tk, tk, sec(C("throughput", "kiln")), 100 * tc / tk, m["throughput", "kiln"] / 1024
    }
    print "\ntargets:"
    for (i = 1; i <= 3; i++) {
      s = sc[i]
      if (!((s, "kiln") in n)) continue
      k = W(s, "kiln"); nj = W(s, "ninja"); sp = W(s, "spawn_pipes")
      printf "  %-10s kiln <= ninja: %-6s (%.2fx)   kiln <= 1.2x spawn loop with pipes: %-6s (%.2fx)\n", s,
        verdict(k <= nj), k / nj, verdict(k <= 1.2 * sp), k / sp
    }
    if (("throughput", "kiln") in n)
      printf "  throughput kiln >= 60%% of cat: %s (%.0f%%)\n", verdict(tc / tk >= 0.6), 100 * tc / tk
  }'
