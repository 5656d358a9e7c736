#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the directory of a private install of Google's Cloud Logging client
# for Node.js, pinned (@google-cloud/logging 11.2.0: Node.js 14 and later;
# 11.3+ needs 18), for tests/fakes/cloudlogging_client_check.js; see
# scripts/npm-client.sh.
set -euo pipefail
v=${KILN_CLOUDLOGGING_CLIENT_VERSION:-11.2.0}
exec bash "$(dirname "$0")/npm-client.sh" cloudlogging \
    "require('@google-cloud/logging').Logging; require('google-auth-library').OAuth2Client;
     if (require('@google-cloud/logging/package.json').version !== '$v') process.exit(1)" \
    "@google-cloud/logging@$v" "google-auth-library@9.15.1"
