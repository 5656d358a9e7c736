// SPDX-License-Identifier: MIT
// Checks tests/fakes/fake_cloudlogging.py with Google's own Node.js client,
// @google-cloud/logging, in REST mode (fallback: JSON over HTTP/1.1): two
// entries (INFO, WARNING) written to projects/proj-node/logs/node-check.
// Usage: node cloudlogging_client_check.js CLIENT_DIR PORT TOKEN
'use strict';
const path = require('path');
const {createRequire} = require('module');
const [dir, port, token] = process.argv.slice(2);
const req = createRequire(path.join(path.resolve(dir), 'package.json'));
const {Logging} = req('@google-cloud/logging');
const {OAuth2Client} = req('google-auth-library');

async function main() {
  const auth = new OAuth2Client();
  auth.setCredentials({access_token: token, expiry_date: Date.now() + 3600 * 1000});
  const logging = new Logging({
    projectId: 'proj-node', fallback: true, apiEndpoint: '127.0.0.1', port: Number(port),
    protocol: 'http', authClient: auth,
  });
  const log = logging.log('node-check');
  const resource = {type: 'global', labels: {project_id: 'proj-node'}};
  await log.write([
    log.entry({resource, severity: 'INFO', labels: {step_id: 'n'}}, 'one'),
    log.entry({resource, severity: 'WARNING', labels: {step_id: 'n'}}, 'two'),
  ]);
}
main().catch((e) => { console.error(e); process.exit(1); });
