#!/usr/bin/env bash
# The container executor against the raw ways of running the same
# containers, in one run on one private podman API service (rootful, vfs, as
# the tests; see bench/README.md):
#
#   bench/container.sh [KILN]     KILN defaults to build/runner/kiln
#
#   chain   50 steps of `true`, one after the other: kiln --executor container,
#           a shell loop of `podman run --rm IMAGE true`, the same loop with
#           what kiln gives every step (like: a per-build network with DNS and
#           the step's alias, the workspace, the home volume, the engine's
#           socket and the output file bound in, HOME, the working directory,
#           the labels), and a shell loop of the Engine API calls kiln makes
#           per step, with curl and kiln's create body (create; attach and
#           wait?condition=next-exit; start once attached; delete while the
#           next step starts)
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
# what kiln makes for a build, for the like-for-like loops
NET=kiln-cbench-net
HOMEVOL=kiln-cbench-home
curl -s -o /dev/null --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
    -d "{\"Name\":\"$NET\",\"Labels\":{\"kiln.bench\":\"1\"}}" http://d/v1.41/networks/create
curl -s -o /dev/null --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
    -d "{\"Name\":\"$HOMEVOL\"}" http://d/v1.41/volumes/create
: >"$work/out.env"
LIKE=(--network "$NET" --network-alias step -v "$work/ws:/workspace" -v "$work/ws:$work/ws"
    -v "$HOMEVOL:/builder/home" -v "$SOCK:/var/run/docker.sock" -v "$work/out.env:$work/out.env"
    -w /workspace -e HOME=/builder/home --label kiln.build=bench --label kiln.owner=bench)

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

# The Engine API calls kiln makes for one step, with curl, with kiln's create
# body (network and alias, binds, labels).
cat >"$work/curl_step.sh" <<'EOF'
#!/usr/bin/env bash
set -eu
S=$1 IMG=$2 NET=$3 HOMEVOL=$4 W=$5
api() { curl -s --unix-socket "$S" "$@"; }
body="{\"Image\":\"$IMG\",\"Cmd\":[\"true\"],\"Env\":[\"HOME=/builder/home\"],
\"WorkingDir\":\"/workspace\",\"Labels\":{\"kiln.build\":\"bench\",\"kiln.owner\":\"bench\"},
\"AttachStdout\":true,\"AttachStderr\":true,\"Tty\":false,\"HostConfig\":{\"Binds\":[\"$W/ws:/workspace\",
\"$W/ws:$W/ws\",\"$HOMEVOL:/builder/home\",\"$S:/var/run/docker.sock\",\"$W/out.env:$W/out.env\"],
\"NetworkMode\":\"$NET\",\"LogConfig\":{\"Type\":\"json-file\"}},
\"NetworkingConfig\":{\"EndpointsConfig\":{\"$NET\":{\"Aliases\":[\"step\"]}}}}"
id=$(api -X POST -H 'Content-Type: application/json' -d "$body" \
    "http://d/v1.41/containers/create" | sed 's/.*"Id":"\([0-9a-f]*\)".*/\1/')
fifo=$(mktemp -u)
mkfifo "$fifo"
# attach and wait (next-exit), then start once the engine has answered the
# attach (its headers dumped first)
api -N -D "$fifo" -X POST -o /dev/null "http://d/v1.41/containers/$id/attach?stream=1&stdout=1&stderr=1" &
att=$!
api -o /dev/null -X POST "http://d/v1.41/containers/$id/wait?condition=next-exit" &
wt=$!
head -1 "$fifo" >/dev/null
cat "$fifo" >/dev/null &
api -o /dev/null -X POST "http://d/v1.41/containers/$id/start"
wait "$wt"
wait "$att"
rm -f "$fifo"
# removed while the next step starts, as kiln does
api -o /dev/null -X DELETE "http://d/v1.41/containers/$id?force=1" &
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
    # the next scenario starts on an empty engine (the curl loops' last
    # removals may still be under way)
    for _ in $(seq 1 600); do
        [ "$(curl -s --unix-socket "$SOCK" 'http://d/v1.41/containers/json?all=1')" = "[]" ] && break
        sleep 0.1
    done
}
KX="container:engine=unix://$SOCK"
# kiln's own CPU time (user+system), per scenario, to tell kiln's share of
# a step's cost from the engine's
run_kiln() {
    cd "$work/ws" && /usr/bin/time -a -o "$work/cpu.$1" -f '%U %S' "$kiln" run "$1" --executor "$KX" --quiet "${@:2}"
}
podman_loop() { for _ in $(seq 1 "$steps"); do podman run --rm "$IMG" true; done; }
podman_par() { seq 1 "$steps" | xargs -P8 -I{} podman run --rm "$IMG" true; }
like_loop() { for _ in $(seq 1 "$steps"); do podman run --rm "${LIKE[@]}" "$IMG" true; done; }
like_par() { seq 1 "$steps" | xargs -P8 -I{} podman run --rm "${LIKE[@]}" "$IMG" true; }
curl_loop() { for _ in $(seq 1 "$steps"); do "$work/curl_step.sh" "$SOCK" "$IMG" "$NET" "$HOMEVOL" "$work"; done; }
curl_par() { seq 1 "$steps" | xargs -P8 -I{} "$work/curl_step.sh" "$SOCK" "$IMG" "$NET" "$HOMEVOL" "$work"; }
kiln_chain() { run_kiln chain.yaml; }
kiln_par() { run_kiln par.yaml --max-parallel 8; }

for r in $(seq 1 "$runs"); do
    echo "== round $r" >&2
    for t in kiln_chain podman_loop like_loop curl_loop kiln_par podman_par like_par curl_par; do timeit "$t" "$t"; done
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
printf '%-8s %8s %10s %10s %8s %10s %10s %8s\n' scenario "kiln s" "podman s" "like s" "curl s" \
    "k/podman" "k/like" "k/curl"
row() {  # row NAME KILN PODMAN LIKE CURL
    printf '%-8s %8.2f %10.2f %10.2f %8.2f %9sx %9sx %7sx\n' "$1" "$(m "$2")" "$(m "$3")" "$(m "$4")" "$(m "$5")" \
        "$(ratio "$(m "$2")" "$(m "$3")")" "$(ratio "$(m "$2")" "$(m "$4")")" "$(ratio "$(m "$2")" "$(m "$5")")"
}
row chain kiln_chain podman_loop like_loop curl_loop
row par8 kiln_par podman_par like_par curl_par
for r in $(seq 1 "$runs"); do
    k() { awk -v n="$1" -v r="$r" '$1 == n && ++c == r {print $2}' "$results"; }
    echo "round $r: kiln/podman, kiln/like, kiln/curl: chain $(ratio "$(k kiln_chain)" "$(k podman_loop)")" \
        "$(ratio "$(k kiln_chain)" "$(k like_loop)") $(ratio "$(k kiln_chain)" "$(k curl_loop)");" \
        "par8 $(ratio "$(k kiln_par)" "$(k podman_par)") $(ratio "$(k kiln_par)" "$(k like_par)")" \
        "$(ratio "$(k kiln_par)" "$(k curl_par)")"
done
cpu() { awk '{print $1 + $2}' "$work/cpu.$1" | median; }
echo "kiln's own CPU (user+sys), median: chain $(cpu chain.yaml) s, par8 $(cpu par.yaml) s for $steps steps ($(echo "scale=1; 1000 * $(cpu chain.yaml) / $steps" | bc -l) ms a step); output $(cpu output.yaml) s"
ko=$(m kiln_output)
po=$(m podman_logs)
echo "output: ${mib} MiB: kiln to the file sink $(echo "scale=1; $mib / $ko" | bc -l) MiB/s (run included: $ko s; log file $logsize bytes), podman logs $(echo "scale=1; $mib / $po" | bc -l) MiB/s ($po s); kiln/podman-logs throughput $(ratio "$po" "$ko")x"
