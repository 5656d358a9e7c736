#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 4's figure: evaluating 1,000 triggers against a push takes under 10 ms.
# Usage: bench/triggers.sh [BUILD_DIR] [N]
set -euo pipefail
build=${1:-build}
"$build/bench/bench_triggers" "${2:-1000}" 200
