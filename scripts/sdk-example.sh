#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds sdk/examples/hello_step the way a third party would: install kiln
# from BUILD_DIR into a temporary prefix, build the example out of tree with
# find_package(KilnSdk) and again with cc + pkg-config, then run a pipeline
# that uses it through --plugin-path and check what it printed.
#   usage: scripts/sdk-example.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
example=$root/sdk/examples/hello_step
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-sdk-example.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { echo "sdk-example: $*"; }
die() { echo "sdk-example: FAILED: $*" >&2; exit 1; }

step "installing $build into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; die "cmake --install"; }
kiln=$prefix/bin/kiln
[ -x "$kiln" ] || die "no kiln in $prefix/bin"

step "building the example with find_package(KilnSdk)"
cmake -S "$example" -B "$work/cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; die "configure"; }
cmake --build "$work/cmake-build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; die "build"; }
[ -f "$work/cmake-build/kiln-step-hello.so" ] || die "no kiln-step-hello.so from CMake"

step "building the example with cc and pkg-config"
mkdir -p "$work/cc-build"
cflags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/${KILN_LIBDIR:-lib}/pkgconfig pkg-config --cflags kiln-plugin) \
    || die "pkg-config kiln-plugin"
# shellcheck disable=SC2086
cc $cflags -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -Wl,--no-undefined \
    -o "$work/cc-build/kiln-step-hello.so" "$example/hello.c" || die "cc"

# Only the installed kiln and the example: no build tree on the plugin path.
unset KILN_PLUGIN_PATH
for dir in "$work/cmake-build" "$work/cc-build"; do
    step "running the pipeline with the plugin from $dir"
    rc=0
    (cd "$work" && "$kiln" run "$example/pipeline.yaml" --plugin-path "$dir" --report "$work/report.json") \
        >"$work/run.log" 2>&1 || rc=$?
    cat "$work/run.log"
    [ "$rc" = 0 ] || die "kiln run exited $rc"
    grep -qF "[greet] hello, kiln" "$work/run.log" || die "no greeting from the plugin"
    grep -qF "[show] the plugin said: hello, kiln" "$work/run.log" || die "the output did not reach the next step"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["steps"][0]; sys.exit(not (s["uses"]=="hello" and s["status"]=="SUCCESS"))' \
        "$work/report.json" || die "report.json does not show hello SUCCESS"
    "$kiln" plugins hello --plugin-path "$dir" | grep -qE '^  name +string +default: world' \
        || die "kiln plugins hello does not show its option"
done
step "ok"
