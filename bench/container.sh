#!/usr/bin/env bash
# The container executor against the raw ways of running the same
# containers, in one run on one private podman API service (rootful, vfs, as
# the tests; see bench/README.md):
#
#   bench/container.sh [KILN]     KILN defaults to build/runner/kiln
#
#   chain   50 steps of `true`, one after the other: kiln --executor container,
#           a shell loop of `podman run --rm IMAGE true`, and a shell loop of
#           the Engine API calls kiln makes per step, with curl (inspect image,
#           create, attach, start, wait, delete)
#   par8    the same 50, 8 at a time (--max-parallel 8; xargs -P8)
#   output  128 MiB of output from one container: kiln to the file sink
#           (--log-dir) against `podman logs` of the same container
#
# Environment: STEPS (50), RUNS (3; medians), MIB (128), KEEP=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=$(realpath "${1:-$root/build/runner/kiln}")
steps=${STEPS:-50}
runs=${RUNS:-3}
mib=${MIB:-128}
for tool in podman curl python3; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (scripts/deps.d/executor)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench: podman's rootful service needs root" >&2; exit 2; }
BUSYBOX=$(command -v busybox || echo /bin/busybox)

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cbench.XXXXXX")
E=$work/engine
mkdir -p "$E/tmp" "$work/ws"
. "$(dirname "$0")/../tests/tools/podman_engine.sh"
podman_engine_conf "$E"
export CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf \
    CONTAINERS_REGISTRIES_CONF=$E/registries.conf
SOCK=$E/podman.sock
TMPDIR=$E/tmp podman system service --time=0 "unix://$SOCK" >"$E/podman.log" 2>&1 &
svc=$!
cleanup() {
    kill "$svc" 2>/dev/null || true
    wait "$svc" 2>/dev/null || true
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
for _ in $(seq 1 1200); do curl -s -o /dev/null --unix-socket "$SOCK" http://d/_ping && break; sleep 0.05; done
curl -s -o /dev/null --max-time 120 --unix-socket "$SOCK" http://d/v1.41/version
R=$work/rootfs
mkdir -p "$R/bin"
cp "$BUSYBOX" "$R/bin/busybox"
for t in sh true yes head; do ln -s busybox "$R/bin/$t"; done
tar -C "$R" -cf "$work/rootfs.tar" .
IMG=localhost/kiln-bench/busy
curl -s --unix-socket "$SOCK" -X POST -H 'Content-Type: application/x-tar' --data-binary @"$work/rootfs.tar" \
    "http://d/v1.41/images/create?fromSrc=-&repo=$IMG" >/dev/null
IMG=$IMG:latest

# pipelines
{
    echo "steps:"
    for i in $(seq 1 "$steps"); do printf -- "- name: %s\n  args: ['true']\n" "$IMG"; done
} >"$work/ws/chain.yaml"
{
    echo "steps:"
    for i in $(seq 1 "$steps"); do printf -- "- name: %s\n  args: ['true']\n  waitFor: ['-']\n" "$IMG"; done
} >"$work/ws/par.yaml"
cat >"$work/ws/output.yaml" <<EOF
steps:
- id: out
  name: $IMG
  entrypoint: sh
  args: ['-c', 'yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c $((mib * 1048576))']
EOF

# The Engine API calls kiln makes for one step, with curl.
cat >"$work/curl_step.sh" <<'EOF'
#!/usr/bin/env bash
set -eu
S=$1 IMG=$2
api() { curl -s --unix-socket "$S" "$@"; }
api -o /dev/null "http://d/v1.41/images/$IMG/json"
id=$(api -X POST -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$IMG\",\"Cmd\":[\"true\"],\"AttachStdout\":true,\"AttachStderr\":true}" \
    "http://d/v1.41/containers/create" | sed 's/.*"Id":"\([0-9a-f]*\)".*/\1/')
fifo=$(mktemp -u)
mkfifo "$fifo"
# attach, and start once the engine has answered it (headers dumped first)
api -N -D "$fifo" -X POST -o /dev/null "http://d/v1.41/containers/$id/attach?stream=1&stdout=1&stderr=1" &
att=$!
head -1 "$fifo" >/dev/null
cat "$fifo" >/dev/null &
api -o /dev/null -X POST "http://d/v1.41/containers/$id/start"
api -o /dev/null -X POST "http://d/v1.41/containers/$id/wait?condition=not-running"
wait "$att"
rm -f "$fifo"
api -o /dev/null -X DELETE "http://d/v1.41/containers/$id?force=1"
EOF
chmod +x "$work/curl_step.sh"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
results=$work/results
: >"$results"
timeit() {  # timeit NAME CMD...
    local t0 t1 name=$1
    shift
    t0=$(now)
    "$@" >"$work/last.out" 2>&1 || { echo "bench: $name failed:" >&2; tail -3 "$work/last.out" >&2; }
    t1=$(now)
    echo "$name $(echo "$t1 - $t0" | bc -l)" >>"$results"
}
KX="container:engine=unix://$SOCK"
# kiln's own CPU time (user+system), per scenario, to tell kiln's share of
# a step's cost from the engine's
run_kiln() {
    cd "$work/ws" && /usr/bin/time -a -o "$work/cpu.$1" -f '%U %S' "$kiln" run "$1" --executor "$KX" --quiet "${@:2}"
}
podman_loop() { for _ in $(seq 1 "$steps"); do podman run --rm "$IMG" true; done; }
podman_par() { seq 1 "$steps" | xargs -P8 -I{} podman run --rm "$IMG" true; }
curl_loop() { for _ in $(seq 1 "$steps"); do "$work/curl_step.sh" "$SOCK" "$IMG"; done; }
curl_par() { seq 1 "$steps" | xargs -P8 -I{} "$work/curl_step.sh" "$SOCK" "$IMG"; }
kiln_chain() { run_kiln chain.yaml; }
kiln_par() { run_kiln par.yaml --max-parallel 8; }

for r in $(seq 1 "$runs"); do
    echo "== round $r" >&2
    for t in kiln_chain podman_loop curl_loop kiln_par podman_par curl_par; do timeit "$t" "$t"; done
done

# Output: kiln to the file sink, then `podman logs` of an equal container.
for r in $(seq 1 "$runs"); do
    rm -rf "$work/logs"
    timeit kiln_output run_kiln output.yaml --log-dir "$work/logs"
    ctr=$(podman run -d "$IMG" sh -c "yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c $((mib * 1048576))")
    podman wait "$ctr" >/dev/null
    t0=$(now)
    podman logs "$ctr" >/dev/null 2>&1
    t1=$(now)
    echo "podman_logs $(echo "$t1 - $t0" | bc -l)" >>"$results"
    podman rm -f "$ctr" >/dev/null
done
logsize=$(stat -c %s "$work/logs/out.log" 2>/dev/null || echo 0)

m() { awk -v n="$1" '$1 == n {print $2}' "$results" | median; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
echo
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); podman $(podman --version | awk '{print $3}') (vfs, runc); $steps steps; medians of $runs runs"
printf '%-8s %10s %12s %10s %12s %12s\n' scenario "kiln s" "podman run s" "curl s" "k/podman" "k/curl"
printf '%-8s %10.2f %12.2f %10.2f %11sx %11sx\n' chain "$(m kiln_chain)" "$(m podman_loop)" "$(m curl_loop)" \
    "$(ratio "$(m kiln_chain)" "$(m podman_loop)")" "$(ratio "$(m kiln_chain)" "$(m curl_loop)")"
printf '%-8s %10.2f %12.2f %10.2f %11sx %11sx\n' par8 "$(m kiln_par)" "$(m podman_par)" "$(m curl_par)" \
    "$(ratio "$(m kiln_par)" "$(m podman_par)")" "$(ratio "$(m kiln_par)" "$(m curl_par)")"
cpu() { awk '{print $1 + $2}' "$work/cpu.$1" | median; }
echo "kiln's own CPU (user+sys), median: chain $(cpu chain.yaml) s, par8 $(cpu par.yaml) s for $steps steps ($(echo "scale=1; 1000 * $(cpu chain.yaml) / $steps" | bc -l) ms a step); output $(cpu output.yaml) s"
ko=$(m kiln_output)
po=$(m podman_logs)
echo "output: ${mib} MiB: kiln to the file sink $(echo "scale=1; $mib / $ko" | bc -l) MiB/s (run included: $ko s; log file $logsize bytes), podman logs $(echo "scale=1; $mib / $po" | bc -l) MiB/s ($po s); kiln/podman-logs throughput $(ratio "$po" "$ko")x"
