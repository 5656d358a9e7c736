#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the directory of a private install of OpenTelemetry's OTLP/HTTP log
# exporter for Node.js, pinned (0.57.2: runs on Node.js 18 and 20), for
# tests/fakes/otlp_client_check.js; see scripts/npm-client.sh.
set -euo pipefail
v=${KILN_OTLP_CLIENT_VERSION:-0.57.2}
exec bash "$(dirname "$0")/npm-client.sh" otlp \
    "require('@opentelemetry/exporter-logs-otlp-http').OTLPLogExporter; require('@opentelemetry/sdk-logs').LoggerProvider;
     if (require('@opentelemetry/exporter-logs-otlp-http/package.json').version !== '$v') process.exit(1)" \
    "@opentelemetry/exporter-logs-otlp-http@$v" "@opentelemetry/sdk-logs@$v" "@opentelemetry/api-logs@$v" \
    "@opentelemetry/api@1.9.0" "@opentelemetry/resources@1.30.1"
