#!/usr/bin/env bash
# The shipping core through the otlp sink: LINES lines (default 1,000,000)
# printed by one step, shipped to tests/fakes/fake_otlp.py --count-only on
# 127.0.0.1 (it counts records, parses nothing), against the raw limit of the
# same step with no sink but the console's (`--quiet`). Reports lines/s and
# kiln's peak RSS (/usr/bin/time's maximum resident set), and checks the
# receiver counted every line. A second run stalls the receiver for STALL
# seconds (default 10: its first request hangs) in the middle of the output
# and checks the same count arrived.
# Usage: bench/ship.sh [BUILD_DIR]   (env: LINES=1000000 STALL=10 RUNS=3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/${1:-build}
kiln=$build/runner/kiln
lines=${LINES:-1000000}
stall=${STALL:-10}
runs=${RUNS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-ship.XXXXXX")
cd "$work"
python3 "$root/tests/fakes/fake_otlp.py" --count-only --port 0 --port-file port >fake.out 2>&1 &
fake=$!
trap 'kill $fake 2>/dev/null; wait $fake 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 200); do [ -s port ] && break; sleep 0.05; done
port=$(cat port)
url=http://127.0.0.1:$port/v1/logs
# Lines the receiver got: records, less the first pieces of lines kiln passed
# on in two (a line that waited while the step was paused).
raw() { curl -sf "http://127.0.0.1:$port/_records" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["raw"] - d["partials"])'; }

# 64-byte lines, numbered.
printf 'steps:\n- id: gen\n  entrypoint: bash\n  args: [-c, "seq -f \\"kiln ship benchmark line %%.0f xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\" 1 %s"]\n' "$lines" >p.yaml
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# timed NAME ARGS...: wall seconds to NAME.t, peak RSS KiB to NAME.rss
timed() {
    local name=$1; shift
    local t0=$EPOCHREALTIME
    /usr/bin/time -f %M -o rss.tmp "$kiln" run p.yaml --quiet "$@" >run.out 2>&1 || { cat run.out; exit 1; }
    echo "$EPOCHREALTIME - $t0" | bc >>"$name.t"
    cat rss.tmp >>"$name.rss"
}
for _ in $(seq 1 "$runs"); do
    timed bare
    before=$(raw)
    timed otlp --sink "otlp:endpoint=$url"
    got=$(( $(raw) - before ))
    [ "$got" = "$lines" ] || { echo "ship.sh: the receiver counted $got of $lines records" >&2; exit 1; }
done
tb=$(median <bare.t) to=$(median <otlp.t)
printf 'lines                 %d\n' "$lines"
printf 'no remote sink        %.2f s  %8.0f lines/s  RSS %d KiB\n' "$tb" "$(echo "$lines / $tb" | bc -l)" "$(median <bare.rss)"
printf 'otlp                  %.2f s  %8.0f lines/s  RSS %d KiB  (%.2fx the time without it)\n' \
    "$to" "$(echo "$lines / $to" | bc -l)" "$(median <otlp.rss)" "$(echo "$to / $tb" | bc -l)"

# The receiver stalls: its first request hangs STALL s (kiln's timeout is
# STALL+5 s, so that request is not cut short); the steps wait meanwhile.
curl -sf -XPOST "http://127.0.0.1:$port/_fault" -d "{\"mode\":\"hang\",\"count\":1,\"seconds\":$stall}" >/dev/null
before=$(raw)
timed stall --sink "otlp:endpoint=$url,timeout=$((stall + 5))s"
got=$(( $(raw) - before ))
printf 'otlp, receiver stalled %ds: %.2f s, RSS %d KiB, %d of %d lines delivered\n' "$stall" \
    "$(cat stall.t)" "$(cat stall.rss)" "$got" "$lines"
[ "$got" = "$lines" ] || exit 1
