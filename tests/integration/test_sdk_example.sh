#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The SDK as a third party uses it: scripts/sdk-example.sh installs this
# build into a temporary prefix, builds sdk/examples/hello_step and
# sdk/examples/http_wait out of tree with find_package(KilnSdk) and with
# cc + pkg-config, and runs pipelines that use them; http-wait against a
# real HTTP server on 127.0.0.1, with a step timeout and a failing sibling
# that must cancel it (statuses TIMEOUT and CANCELLED). Skipped (exit 0
# with a note) only when a tool is missing.
set -euo pipefail
: "${KILN_SOURCE_DIR:?}" "${KILN_BUILD_DIR:?}"
for tool in cmake pkg-config cc ninja python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "skip: $tool is not installed"
        exit 0
    fi
done
bash "$KILN_SOURCE_DIR/scripts/sdk-example.sh" "$KILN_BUILD_DIR"
