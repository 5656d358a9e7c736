// SPDX-License-Identifier: MIT
// Checks tests/fakes/fake_cloudlogging.py with Google's own Node.js client,
// @google-cloud/logging (its generated LoggingServiceV2Client, in REST mode:
// fallback, JSON over HTTP/1.1): two
// entries (INFO, WARNING) written to projects/proj-node/logs/node-check.
// Usage: node cloudlogging_client_check.js CLIENT_DIR PORT TOKEN
'use strict';
const path = require('path');
const {createRequire} = require('module');
const [dir, port, token] = process.argv.slice(2);
const req = createRequire(path.join(path.resolve(dir), 'package.json'));
// The generated client (what Logging#write calls underneath), given the
// token directly, as tests/fakes/cloudrun_client_check.js does.
const {v2} = req('@google-cloud/logging');
const {OAuth2Client} = req('google-auth-library');

async function main() {
  const auth = new OAuth2Client();
  auth.setCredentials({access_token: token, expiry_date: Date.now() + 3600 * 1000});
  const client = new v2.LoggingServiceV2Client({
    fallback: true, apiEndpoint: '127.0.0.1', port: Number(port), protocol: 'http', authClient: auth,
  });
  const resource = {type: 'global', labels: {project_id: 'proj-node'}};
  await client.writeLogEntries({
    logName: 'projects/proj-node/logs/node-check',
    resource,
    entries: [
      {severity: 'INFO', textPayload: 'one', labels: {step_id: 'n'}, timestamp: {seconds: 1700000000, nanos: 5}},
      {severity: 'WARNING', textPayload: 'two', labels: {step_id: 'n'}, insertId: 'node-2'},
    ],
  });
}
main().catch((e) => { console.error(e); process.exit(1); });
