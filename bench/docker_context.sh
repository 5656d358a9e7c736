#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bench for docker-build (issue 5): a 200 MiB build context streams to a real
# engine (podman's Docker-compatible API service, private configuration in a
# temporary directory) while kiln's peak RSS stays under 32 MiB.
#
# usage: bench/docker_context.sh [BUILD_DIR]   (default: ./build)
# env:   CONTEXT_MIB (default 200), RSS_LIMIT_KIB (default 32768)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
KILN=$BUILD/runner/kiln
export KILN_PLUGIN_PATH=$BUILD/plugins
MIB=${CONTEXT_MIB:-200}
LIMIT=${RSS_LIMIT_KIB:-32768}
[ -x "$KILN" ] || { echo "no kiln at $KILN (build first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 2; }
command -v podman >/dev/null || { echo "needs podman and runc (scripts/deps.d/docker)" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-docker-bench.XXXXXX")
PODMAN_PID=
cleanup() {
    [ -n "$PODMAN_PID" ] && { kill "$PODMAN_PID" 2>/dev/null || true; wait "$PODMAN_PID" 2>/dev/null || true; }
    rm -rf "$TMP"
}
trap cleanup EXIT

E=$TMP/engine
mkdir -p "$E/tmp"
. "$(dirname "$0")/../tests/tools/podman_engine.sh"
podman_engine_conf "$E"
env CONTAINERS_CONF="$E/containers.conf" CONTAINERS_STORAGE_CONF="$E/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$E/registries.conf" TMPDIR="$E/tmp" \
    podman system service --time=0 "unix://$E/podman.sock" >"$E/podman.log" 2>&1 &
PODMAN_PID=$!
for i in $(seq 1 200); do
    curl -sf --unix-socket "$E/podman.sock" http://d/_ping >/dev/null 2>&1 && break
    [ "$i" = 200 ] && { echo "podman service did not start" >&2; exit 1; }
    sleep 0.05
done

# the context: MIB MiB of incompressible data in 10 MiB files, plus 2000 small files
C=$TMP/ctx
mkdir -p "$C/data" "$C/small"
for i in $(seq 1 $((MIB / 10))); do head -c $((10 << 20)) /dev/urandom >"$C/data/blob$i.bin"; done
for i in $(seq 1 2000); do echo "$i" >"$C/small/f$i.txt"; done
printf 'FROM scratch\nCOPY small/f1.txt /f1.txt\n' >"$C/Dockerfile"
du -sh "$C" | sed 's/^/context: /'

cd "$TMP"
printf 'steps:\n- id: img\n  uses: docker-build\n  with: {context: ctx, host: "unix://%s/podman.sock", tags: [kiln-bench/ctx:1]}\n' "$E" >pipeline.yaml
/usr/bin/time -v "$KILN" run pipeline.yaml --quiet --log-dir logs >run.out 2>time.txt || {
    echo "kiln run failed:"; cat run.out time.txt logs/img.log 2>/dev/null | tail -20; exit 1; }
rss=$(awk -F': ' '/Maximum resident set size/{print $2}' time.txt)
wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' time.txt)
grep "sent the build context" logs/img.log | sed 's/^kiln: //'
# the same kiln with a trivial step, for the baseline
printf 'steps:\n- id: s\n  uses: exec\n  with: {args: ["true"]}\n' >base.yaml
/usr/bin/time -v "$KILN" run base.yaml --quiet >/dev/null 2>base.txt || true
base=$(awk -F': ' '/Maximum resident set size/{print $2}' base.txt)
echo "kiln peak RSS: ${rss} KiB with a ${MIB} MiB context (wall ${wall}); baseline run: ${base} KiB; limit ${LIMIT} KiB"
[ "$rss" -lt "$LIMIT" ] || { echo "FAIL: peak RSS ${rss} KiB >= ${LIMIT} KiB"; exit 1; }
echo "ok"
