// SPDX-License-Identifier: MIT
// Drives the fake Cloud Run Admin API (fake_cloudrun.py) with Google's own
// Node.js client, @google-cloud/run, in its REST mode (fallback: true, JSON
// over HTTP/1.1, as a libcurl client talks), and writes what the client
// returned, step by step, as one JSON object. It asserts nothing itself:
// tests/integration/test_fake_cloudrun.sh checks the file, so that each
// expectation has a name in the test's output.
//
// Usage: node cloudrun_client_check.js CLIENT_DIR PORT TOKEN PROJECT LOCATION OUT
//   CLIENT_DIR  a directory whose node_modules holds @google-cloud/run
//               (printed by scripts/cloudrun-client.sh)
//   OUT         the JSON file to write: {"step": {...what came back...}}
// Exits 0 when every step ran (a step that throws records the error and the
// run goes on), 2 on a usage error, 1 when the client itself could not load.
'use strict';

const path = require('path');
const fs = require('fs');
const {createRequire} = require('module');

const [dir, port, token, project, location, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node cloudrun_client_check.js CLIENT_DIR PORT TOKEN PROJECT LOCATION OUT');
  process.exit(2);
}
const req = createRequire(path.join(path.resolve(dir), 'package.json'));
const {ServicesClient} = req('@google-cloud/run').v2;
const {OAuth2Client} = req('google-auth-library');
const clientVersion = req('@google-cloud/run/package.json').version;

// A static access token: an OAuth2 client that has one and no way to
// refresh it, which is what a CI job with a minted token amounts to.
function client(tok) {
  const auth = new OAuth2Client();
  auth.setCredentials({access_token: tok, expiry_date: Date.now() + 3600 * 1000});
  return new ServicesClient({
    fallback: true, // REST: JSON over HTTP/1.1
    apiEndpoint: '127.0.0.1',
    port: Number(port),
    protocol: 'http',
    authClient: auth,
  });
}

const results = {client: {package: '@google-cloud/run', version: clientVersion, node: process.version}};
// An error as the client surfaces it. Operation failures are GoogleErrors
// with the gRPC code; with gax 5 an HTTP error in REST mode comes out as the
// GaxiosError of google-auth-library's fetch: code and status are the HTTP
// status and the message is the response body, parsed here into "body" (a
// known gax bug, fixed in later gax releases by mapping to gRPC codes).
function errorOf(e) {
  let body;
  try {
    body = JSON.parse(e.message);
  } catch (_) {
    body = undefined;
  }
  return {error: {code: e.code, status: e.status, message: e.message, name: e.constructor && e.constructor.name,
                  body}};
}
async function step(name, fn) {
  const t0 = Date.now();
  try {
    results[name] = Object.assign({ms: 0}, await fn());
  } catch (e) {
    results[name] = errorOf(e);
  }
  results[name].ms = Date.now() - t0;
}
// The parts of a Service worth asserting on.
function facts(s) {
  return {
    name: s.name, generation: String(s.generation), observedGeneration: String(s.observedGeneration), uri: s.uri,
    reconciling: s.reconciling, image: s.template && s.template.containers[0] && s.template.containers[0].image,
    env: s.template && s.template.containers[0] && s.template.containers[0].env.map(e => `${e.name}=${e.value}`),
    containerPort: s.template && s.template.containers[0] && s.template.containers[0].ports[0] &&
      s.template.containers[0].ports[0].containerPort,
    limits: s.template && s.template.containers[0] && s.template.containers[0].resources &&
      s.template.containers[0].resources.limits,
    ingress: s.ingress, launchStage: s.launchStage, labels: s.labels,
    traffic: (s.traffic || []).map(t => `${t.type}:${t.percent}`),
    trafficStatuses: (s.trafficStatuses || []).map(t => `${t.type}:${t.percent}`),
    terminalState: s.terminalCondition && s.terminalCondition.state,
    terminalMessage: s.terminalCondition && s.terminalCondition.message,
    latestReadyRevision: s.latestReadyRevision, latestCreatedRevision: s.latestCreatedRevision,
    etag: s.etag, createTime: s.createTime && typeof s.createTime.seconds,
  };
}

async function main() {
  const c = client(token);
  const parent = `projects/${project}/locations/${location}`;
  const image = 'us-docker.pkg.dev/kiln-test/apps/web:1';
  let ready;

  await step('create', async () => {
    const [op] = await c.createService({
      parent, serviceId: 'web',
      service: {labels: {app: 'web'}, template: {containers: [{image, env: [{name: 'GREETING', value: 'hello'}]}]}},
    });
    const started = {opName: op.name, doneAtStart: op.done, metadata: facts(op.metadata)};
    const [svc] = await op.promise();
    ready = svc;
    return Object.assign(started, {result: facts(svc)});
  });
  await step('createAgain', async () => {
    const [op] = await c.createService({parent, serviceId: 'web', service: {template: {containers: [{image}]}}});
    return {opName: op.name};
  });
  await step('get', async () => {
    const [svc] = await c.getService({name: `${parent}/services/web`});
    return facts(svc);
  });
  await step('getMissing', async () => {
    const [svc] = await c.getService({name: `${parent}/services/nope`});
    return facts(svc);
  });
  await step('update', async () => {
    const svc = JSON.parse(JSON.stringify(ready));
    svc.template.containers[0].image = image.replace(':1', ':2');
    const [op] = await c.updateService({service: svc});
    const started = {doneAtStart: op.done, metadata: facts(op.metadata)};
    // checkUpdateServiceProgress is the client's GetOperation by name.
    const polled = await c.checkUpdateServiceProgress(op.name);
    started.pollDone = polled.done;
    const [after] = await op.promise();
    ready = after;
    return Object.assign(started, {result: facts(after)});
  });
  await step('updateStaleEtag', async () => {
    const [op] = await c.updateService({service: {name: `${parent}/services/web`, etag: '"stale/etag"',
                                                  template: {containers: [{image}]}}});
    return {opName: op.name};
  });
  await step('failingDeploy', async () => {
    const [op] = await c.updateService({service: {name: ready.name, template: {
      containers: [{image: 'us-docker.pkg.dev/kiln-test/apps/fail-deploy:3'}]}}});
    const [after] = await op.promise();
    return {result: facts(after)};
  });
  await step('afterFailure', async () => {
    const [svc] = await c.getService({name: `${parent}/services/web`});
    return facts(svc);
  });
  await step('upsert', async () => {
    const [op] = await c.updateService({allowMissing: true, service: {name: `${parent}/services/api`,
      template: {containers: [{image: 'us-docker.pkg.dev/kiln-test/apps/api:1', ports: [{containerPort: 9000}]}]}}});
    const [svc] = await op.promise();
    return {result: facts(svc)};
  });
  await step('list', async () => {
    const [services] = await c.listServices({parent});
    return {names: services.map(s => s.name)};
  });
  await step('badServiceId', async () => {
    const [op] = await c.createService({parent, serviceId: 'Bad_Name', service: {template: {containers: [{image}]}}});
    return {opName: op.name};
  });
  await step('noImage', async () => {
    const [op] = await c.createService({parent, serviceId: 'noimage', service: {template: {containers: [{}]}}});
    return {opName: op.name};
  });
  await step('getIamPolicy', async () => {
    const [p] = await c.getIamPolicy({resource: `${parent}/services/web`});
    return {version: p.version, bindings: p.bindings, etag: Buffer.from(p.etag).toString('base64')};
  });
  let etag;
  await step('setIamPolicy', async () => {
    const [p] = await c.setIamPolicy({resource: `${parent}/services/web`,
      policy: {bindings: [{role: 'roles/run.invoker', members: ['allUsers']}]}});
    etag = p.etag;
    return {version: p.version, bindings: p.bindings.map(b => ({role: b.role, members: b.members})),
            etag: Buffer.from(p.etag).toString('base64')};
  });
  await step('setIamPolicyStale', async () => {
    const [p] = await c.setIamPolicy({resource: `${parent}/services/web`,
      policy: {etag: Buffer.from('stale!!!'), bindings: []}});
    return {version: p.version};
  });
  await step('setIamPolicyWithEtag', async () => {
    const [p] = await c.setIamPolicy({resource: `${parent}/services/web`,
      policy: {etag, bindings: [{role: 'roles/run.invoker', members: ['allUsers', 'user:dev@example.com']}]}});
    return {bindings: p.bindings.map(b => ({role: b.role, members: b.members}))};
  });
  await step('testIamPermissions', async () => {
    const [r] = await c.testIamPermissions({resource: `${parent}/services/web`,
      permissions: ['run.services.get', 'run.routes.invoke']});
    return {permissions: r.permissions};
  });
  await step('delete', async () => {
    const [op] = await c.deleteService({name: `${parent}/services/api`});
    const [svc] = await op.promise();
    return {result: facts(svc)};
  });
  await step('getDeleted', async () => {
    const [svc] = await c.getService({name: `${parent}/services/api`});
    return facts(svc);
  });
  await step('wrongToken', async () => {
    const [svc] = await client('not-' + token).getService({name: `${parent}/services/web`});
    return facts(svc);
  });
  await c.close();
}

main().then(() => {
  fs.writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
}, e => {
  console.error(e);
  fs.writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
  process.exit(1);
});
