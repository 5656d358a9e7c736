#!/usr/bin/env bash
# Writes the benchmark graphs into DIR, COUNT steps each (default 2000), every
# step running `true`:
#   DIR/kiln-MODE.yaml   Cloud Build YAML for kiln
#   DIR/ninja-MODE/build.ninja
#   DIR/make-MODE/Makefile
# MODE:
#   indep      independent steps (kiln: waitFor: ['-'])
#   chain      each step waits for the previous one (kiln: waitFor: [prev])
#   chain_all  each step waits for every earlier one. For kiln this is Cloud
#              Build's default form (no waitFor at all); ninja and make have
#              no such default, so their files list every earlier step.
# The ninja files have no phony rules and no stamps: the command is plain
# `true`, outputs are never created, so ninja runs every edge every time.
# The Makefiles use .PHONY targets, so make runs every recipe every time.
set -euo pipefail
dir=$1
count=${2:-2000}
for mode in indep chain chain_all; do
  mkdir -p "$dir/ninja-$mode" "$dir/make-$mode"
  awk -v n="$count" -v mode="$mode" -v out="$dir" '
    function pre(i, sep,   j, s) {
      s = ""
      if (mode == "chain" && i > 0) s = sep "s" (i - 1)
      if (mode == "chain_all") for (j = 0; j < i; j++) s = s sep "s" j
      return s
    }
    BEGIN {
      yaml = out "/kiln-" mode ".yaml"
      nin = out "/ninja-" mode "/build.ninja"
      mk = out "/make-" mode "/Makefile"
      print "steps:" > yaml
      print "rule run\n  command = true\n" > nin
      printf ".PHONY: all" > mk
      for (i = 0; i < n; i++) printf " s%d", i > mk
      printf "\nall:" > mk
      for (i = 0; i < n; i++) printf " s%d", i > mk
      print "" > mk
      for (i = 0; i < n; i++) {
        printf "- id: s%d\n  args: [\"true\"]\n", i > yaml
        if (mode == "indep") print "  waitFor: [\"-\"]" > yaml
        if (mode == "chain" && i > 0) printf "  waitFor: [s%d]\n", i - 1 > yaml
        p = pre(i, " ")
        printf "build s%d: run%s\n", i, (p == "" ? "" : " |" p) > nin
        printf "s%d:%s\n\ttrue\n", i, p > mk
      }
    }'
done
