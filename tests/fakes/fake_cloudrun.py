#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Cloud Run Admin API v2 for kiln's tests.

Cloud Run cannot be reached from the test machines, so this stands in for
run.googleapis.com: services, their long-running operations and their IAM
policies, over REST/JSON as Google's front end serves them. It is checked by
real Google clients: @google-cloud/run for Node.js in its REST mode and,
where gcloud is installed, gcloud's IAM commands and the Cloud Run v2 client
gcloud bundles (tests/integration/test_fake_cloudrun.sh). It is meant to
answer a client such as kiln's cloudrun-deploy plugin the way the real API
would: the same paths, JSON shapes, status codes and error bodies, and real
messages where they could be found.

Usage:
  python3 fake_cloudrun.py --port-file FILE [--port 0] [--log FILE]
                           [--token TOKEN] [--deploy-seconds 1.0]
                           [--project P]...
Listens on 127.0.0.1, plain HTTP/1.1. With --port 0 the kernel picks a free
port; the port is written to --port-file (a temporary file renamed into
place) once the socket listens. --log FILE gets one JSON object per request:
  {"method", "path" (no query), "query" (first value of each parameter),
   "content_type", "authorization" (true if the header was sent; never the
   token), "user_agent", "body" (the JSON body parsed, else null), "status"}
written when the response status is sent. SIGTERM or SIGINT stops the
server and exits 0.

What it implements (P project, L location, S service id):
  - POST   /v2/projects/P/locations/L/services?serviceId=S[&validateOnly=true]
           body Service -> Operation. 409 ALREADY_EXISTS `Resource 'S'
           already exists.` when S exists.
  - GET    /v2/projects/P/locations/L/services/S -> Service; 404 NOT_FOUND
           `Resource 'S' of kind 'SERVICE' in region 'L' in project 'P' does
           not exist.`
  - GET    /v2/projects/P/locations/L/services[?pageSize&pageToken]
           -> {"services": [...], "nextPageToken"}; L "-" lists every
           location; no services gives {} (empty fields are omitted).
  - PATCH  /v2/projects/P/locations/L/services/S[?updateMask=a,b.c]
           [&allowMissing=true][&validateOnly=true] body Service -> Operation.
           404 as for GET when S is missing, unless allowMissing=true, which
           creates it. Without updateMask the body replaces every field a
           client may set; with one, only those paths are copied. An "etag"
           in the body that is not the current one: 409 ABORTED.
  - DELETE /v2/projects/P/locations/L/services/S[?etag=E][&validateOnly=true]
           -> Operation, done at once; the service is gone at once.
  - GET    /v2/projects/P/locations/L/operations/ID -> Operation;
           GET .../operations (list); DELETE .../operations/ID -> {};
           POST .../operations/ID:wait (body {"timeout": "10s"}) waits until
           the operation is done or the timeout (default 60 s) passes.
  - GET|POST /v2/projects/P/locations/L/services/S:getIamPolicy (query
           options.requestedPolicyVersion or body {"options": ...}),
           POST .../services/S:setIamPolicy {"policy": {"bindings":
           [{"role", "members"}], "etag", "version"}} -> Policy,
           POST .../services/S:testIamPermissions -> the run.* permissions
           asked for. A service without bindings has {"etag": "ACAB"}. An
           etag that is not the current one: 409 ABORTED `There were
           concurrent policy changes. Please retry the whole
           read-modify-write with exponential backoff.` The same three under
           /v1/ (Cloud Run admin v1, which gcloud's IAM commands use) act on
           the same policies.
  - Operation: {"name": "projects/P/locations/L/operations/UUID",
           "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.
           Service", ...the Service when the operation started}, "done":
           true (omitted while false), "response": {"@type": ..., ...the
           Service} or "error": {"code", "message"}}.
  - Service as the API returns it, in proto3 JSON (camelCase, int64 as
    strings, false/0/""/[]/{} omitted): name, uid, generation, labels,
    annotations, createTime, updateTime, creator, lastModifier, ingress
    (default INGRESS_TRAFFIC_ALL), launchStage (default GA), template with
    server defaults (containers[].resources {limits {cpu 1000m, memory
    512Mi}, cpuIdle, startupCpuBoost}, ports [{name http1, containerPort
    8080}], startupProbe; scaling {maxInstanceCount 100}, timeout 300s,
    serviceAccount NUMBER-compute@developer.gserviceaccount.com,
    maxInstanceRequestConcurrency 80), traffic (default [{type
    TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, percent 100}]),
    observedGeneration, terminalCondition, conditions (RoutesReady,
    ConfigurationsReady), latestReadyRevision, latestCreatedRevision
    (projects/P/locations/L/revisions/S-00001-abc, counting up each time the
    template changes, or template.revision when given), trafficStatuses,
    uri (https://S-HASH-XX.a.run.app) and urls, reconciling, etag. Fields a
    client set that the fake does not model are kept as sent.
  - Deploys, simulated. A create, or an update that changes anything a
    client sets, bumps generation and returns an Operation that is not done
    for --deploy-seconds; meanwhile the service has reconciling true and
    terminalCondition Ready CONDITION_RECONCILING, and a template change has
    made a new revision (latestCreatedRevision). Then the operation is done:
    response = the Service (Ready CONDITION_SUCCEEDED, observedGeneration =
    generation, latestReadyRevision = latestCreatedRevision). If a container
    image contains "fail-deploy", the new revision fails instead: the
    operation ends with error {code 9 (FAILED_PRECONDITION), message
    `Revision 'S-00002-xyz' is not ready and cannot serve traffic. The
    user-provided container failed to start and listen on the port defined
    provided by the PORT=8080 environment variable within the allocated
    timeout. This can happen when the container port is misconfigured or if
    the timeout is too short. The health check timeout can be extended. Logs
    for this revision might contain more information.`} (the real message;
    the port is the first container's), the service's terminalCondition is
    CONDITION_FAILED with that message, and observedGeneration,
    latestReadyRevision, trafficStatuses and uri keep their last serving
    values (as the API reference describes). An update that changes
    nothing returns an operation that is already done.
  - Validation, with Google's 400 INVALID_ARGUMENT body and a
    google.rpc.BadRequest detail: unknown fields (`Invalid JSON payload
    received. Unknown name "x" at 'service.template': Cannot find field.`),
    a bad serviceId (`Violation in CreateServiceRequest.service_id: only
    lowercase, digits, and hyphens; must begin with letter, and cannot end
    with hyphen; must be less than 50 characters.`), a missing template or
    containers, a missing or malformed image (`Violation in
    CreateServiceRequest.service.template.containers[0].image: must be a
    container image path in the form [hostname/]repo-path[:tag and/or
    @digest]`), an env var named PORT, traffic not adding up to 100, a
    template.revision that names another revision of different
    configuration (409 ALREADY_EXISTS `Revision named 'R' with different
    configuration already exists.`). Enums may be sent as names or numbers.
  - `$alt=json;enum-encoding=int` (sent by Google's client libraries) makes
    enums numbers in the response, as the real front end does.
  - --token: every request must carry "Authorization: Bearer TOKEN", else
    401 {"error": {"code": 401, "message": "Request had invalid
    authentication credentials. Expected OAuth 2 access token, login cookie
    or other valid authentication credential. See https://developers.google.
    com/identity/sign-in/web/devconsole-project.", "status":
    "UNAUTHENTICATED"}} with WWW-Authenticate: Bearer realm=....
  - --project P (repeatable): only those projects exist; any other gets 403
    PERMISSION_DENIED `Permission 'run.services.get' denied on resource
    'projects/X/locations/L/services/S' (or resource may not exist).` (the
    verb follows the method). Without --project every project exists.
  - Every error is {"error": {"code": HTTP, "message", "status", "details"?}}.

Limits, compared with the real service:
  - 127.0.0.1 only, plain HTTP/1.1; JSON only (no gRPC, no protobuf); one
    bearer token, no IAM enforcement (the policies are stored, not applied).
  - Only services, their operations and IAM. No revisions, jobs, executions,
    tasks, worker pools or builds endpoints: revisions exist only as names.
    No Knative v1 API (/apis/serving.knative.dev/v1/...), which gcloud run
    deploy/describe/list use; of v1 only the IAM methods are served.
  - Field checking covers Service, RevisionTemplate, Container, ports, env,
    resources, scaling and traffic; deeper messages (probes, volumes,
    vpcAccess, ...) are accepted as sent, and their enums are not converted
    to numbers. Some 400 messages are approximations (the ones above that
    are not marked real). No `fields` partial responses.
  - Nothing runs: no image is pulled, no URL answers. A deploy fails only
    for "fail-deploy" images; timeouts, probes, secrets, VPC and the rest are
    not checked.
  - An update while another operation on the service is pending finishes the
    pending one at once (as its deploy would have ended) before starting. A
    service is deleted at once; deleteTime/expireTime are not simulated.
  - IAM members and roles are not validated; conditions are stored as sent.
  - Unknown paths and methods get a JSON 404 (the real front end answers
    with an HTML page).
"""
import base64
import copy
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qs, unquote, urlsplit

import fakelib

SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
CREATOR = "kiln-fake-deployer@example.com"
UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                   "cookie or other valid authentication credential. See "
                   "https://developers.google.com/identity/sign-in/web/devconsole-project.")
SERVICE_ID_RULE = ("only lowercase, digits, and hyphens; must begin with letter, and cannot end with hyphen; "
                   "must be less than 50 characters.")
IMAGE_RULE = "must be a container image path in the form [hostname/]repo-path[:tag and/or @digest]"
IAM_CONFLICT = ("There were concurrent policy changes. Please retry the whole read-modify-write with "
                "exponential backoff.")
FAILED_CONTAINER = ("Revision '{rev}' is not ready and cannot serve traffic. The user-provided container failed "
                    "to start and listen on the port defined provided by the PORT={port} environment variable "
                    "within the allocated timeout. This can happen when the container port is misconfigured or "
                    "if the timeout is too short. The health check timeout can be extended. Logs for this "
                    "revision might contain more information.")

# google.rpc.Code: name -> (number, HTTP status)
CODES = {
    "INVALID_ARGUMENT": (3, 400), "NOT_FOUND": (5, 404), "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403), "FAILED_PRECONDITION": (9, 400), "ABORTED": (10, 409),
    "INTERNAL": (13, 500), "UNAUTHENTICATED": (16, 401),
}

# --------------------------------------------------------------------------
# Enums: proto3 JSON sends names; `$alt=json;enum-encoding=int` numbers.

def _enum(*names, start=0):
    return {n: i for i, n in enumerate(names, start)}


INGRESS = _enum("INGRESS_TRAFFIC_UNSPECIFIED", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY",
                "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_NONE")
LAUNCH_STAGE = {"LAUNCH_STAGE_UNSPECIFIED": 0, "UNIMPLEMENTED": 6, "PRELAUNCH": 7, "EARLY_ACCESS": 1,
                "ALPHA": 2, "BETA": 3, "GA": 4, "DEPRECATED": 5}
TRAFFIC_TYPE = _enum("TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED", "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
                     "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION")
COND_STATE = _enum("STATE_UNSPECIFIED", "CONDITION_PENDING", "CONDITION_RECONCILING", "CONDITION_FAILED",
                   "CONDITION_SUCCEEDED")
SEVERITY = _enum("SEVERITY_UNSPECIFIED", "ERROR", "WARNING", "INFO")
COMMON_REASON = {"COMMON_REASON_UNDEFINED": 0, "UNKNOWN": 1, "REVISION_FAILED": 3,
                 "PROGRESS_DEADLINE_EXCEEDED": 4, "CONTAINER_MISSING": 6, "CONTAINER_PERMISSION_DENIED": 7,
                 "CONTAINER_IMAGE_UNAUTHORIZED": 8, "CONTAINER_IMAGE_AUTHORIZATION_CHECK_FAILED": 9,
                 "ENCRYPTION_KEY_PERMISSION_DENIED": 10, "ENCRYPTION_KEY_CHECK_FAILED": 11,
                 "SECRETS_ACCESS_CHECK_FAILED": 12, "WAITING_FOR_OPERATION": 13, "IMMEDIATE_RETRY": 14,
                 "POSTPONED_RETRY": 15, "INTERNAL": 16, "VPC_NETWORK_NOT_FOUND": 17}
REVISION_REASON = _enum("REVISION_REASON_UNDEFINED", "PENDING", "RESERVE", "RETIRED", "RETIRING", "RECREATING",
                        "HEALTH_CHECK_CONTAINER_ERROR", "CUSTOMIZED_PATH_RESPONSE_PENDING",
                        "MIN_INSTANCES_NOT_PROVISIONED", "ACTIVE_REVISION_LIMIT_REACHED", "NO_DEPLOYMENT",
                        "HEALTH_CHECK_SKIPPED", "MIN_INSTANCES_WARMING")
EXEC_ENV = _enum("EXECUTION_ENVIRONMENT_UNSPECIFIED", "EXECUTION_ENVIRONMENT_GEN1", "EXECUTION_ENVIRONMENT_GEN2")
KEY_REVOCATION = _enum("ENCRYPTION_KEY_REVOCATION_ACTION_UNSPECIFIED", "PREVENT_NEW", "SHUTDOWN")
SCALING_MODE = _enum("SCALING_MODE_UNSPECIFIED", "AUTOMATIC", "MANUAL")

# --------------------------------------------------------------------------
# The messages whose fields are checked. Each field is a kind: "s" scalar,
# "map" string map, "any" anything (not modelled), "[X]" repeated X, or the
# name of another message; an enum is its table.

MESSAGES = {
    "Service": {
        "name": "s", "description": "s", "uid": "s", "generation": "s", "labels": "map", "annotations": "map",
        "createTime": "s", "updateTime": "s", "deleteTime": "s", "expireTime": "s", "creator": "s",
        "lastModifier": "s", "client": "s", "clientVersion": "s", "ingress": INGRESS,
        "launchStage": LAUNCH_STAGE, "binaryAuthorization": "any", "template": "RevisionTemplate",
        "traffic": "[TrafficTarget]", "scaling": "ServiceScaling", "invokerIamDisabled": "s",
        "defaultUriDisabled": "s", "urls": "any", "iapEnabled": "s", "multiRegionSettings": "any",
        "customAudiences": "any", "observedGeneration": "s", "terminalCondition": "Condition",
        "conditions": "[Condition]", "latestReadyRevision": "s", "latestCreatedRevision": "s",
        "trafficStatuses": "[TrafficTargetStatus]", "uri": "s", "satisfiesPzs": "s",
        "threatDetectionEnabled": "s", "buildConfig": "any", "reconciling": "s", "etag": "s",
    },
    "RevisionTemplate": {
        "revision": "s", "labels": "map", "annotations": "map", "scaling": "RevisionScaling", "vpcAccess": "any",
        "timeout": "s", "serviceAccount": "s", "containers": "[Container]", "volumes": "any",
        "executionEnvironment": EXEC_ENV, "encryptionKey": "s", "maxInstanceRequestConcurrency": "s",
        "serviceMesh": "any", "encryptionKeyRevocationAction": KEY_REVOCATION,
        "encryptionKeyShutdownDuration": "s", "sessionAffinity": "s", "healthCheckDisabled": "s",
        "nodeSelector": "any", "gpuZonalRedundancyDisabled": "s",
    },
    "Container": {
        "name": "s", "image": "s", "sourceCode": "any", "command": "any", "args": "any", "env": "[EnvVar]",
        "resources": "ResourceRequirements", "ports": "[ContainerPort]", "volumeMounts": "any",
        "workingDir": "s", "livenessProbe": "any", "startupProbe": "any", "readinessProbe": "any",
        "dependsOn": "any", "baseImageUri": "s", "buildInfo": "any",
    },
    "EnvVar": {"name": "s", "value": "s", "valueSource": "any"},
    "ContainerPort": {"name": "s", "containerPort": "s"},
    "ResourceRequirements": {"limits": "map", "cpuIdle": "s", "startupCpuBoost": "s"},
    "RevisionScaling": {"minInstanceCount": "s", "maxInstanceCount": "s"},
    "ServiceScaling": {"minInstanceCount": "s", "scalingMode": SCALING_MODE, "maxInstanceCount": "s",
                       "manualInstanceCount": "s"},
    "TrafficTarget": {"type": TRAFFIC_TYPE, "revision": "s", "percent": "s", "tag": "s"},
    "TrafficTargetStatus": {"type": TRAFFIC_TYPE, "revision": "s", "percent": "s", "tag": "s", "uri": "s"},
    "Condition": {"type": "s", "state": COND_STATE, "message": "s", "lastTransitionTime": "s",
                  "severity": SEVERITY, "reason": COMMON_REASON, "revisionReason": REVISION_REASON,
                  "executionReason": "any"},
}
# What a client may set on a Service; everything else is output only.
SETTABLE = ["description", "labels", "annotations", "client", "clientVersion", "ingress", "launchStage",
            "binaryAuthorization", "template", "traffic", "scaling", "invokerIamDisabled", "defaultUriDisabled",
            "iapEnabled", "multiRegionSettings", "customAudiences", "buildConfig"]
INT64 = {"generation", "observedGeneration"}
SERVICE_ID = re.compile(r"^[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?$")
# [hostname[:port]/]path[:tag][@digest], lowercase path components.
IMAGE = re.compile(r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
                   r"(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+:[a-f0-9]{32,})?$")
REGION_CODES = {
    "us-central1": "uc", "us-east1": "ue", "us-east4": "uk", "us-east5": "ul", "us-west1": "uw", "us-west2": "wl",
    "us-west3": "wm", "us-west4": "wn", "us-south1": "vp", "northamerica-northeast1": "nn",
    "southamerica-east1": "rj", "europe-west1": "ew", "europe-west2": "nw", "europe-west3": "ey",
    "europe-west4": "ez", "europe-west6": "oa", "europe-west9": "od", "europe-north1": "lz",
    "europe-central2": "lm", "asia-east1": "de", "asia-east2": "df", "asia-northeast1": "an",
    "asia-northeast2": "dt", "asia-northeast3": "du", "asia-south1": "el", "asia-southeast1": "as",
    "asia-southeast2": "et", "australia-southeast1": "ts", "me-west1": "zf",
}


def camel(name):
    """proto3 JSON parsers take field names in snake_case too."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def digest(*parts, n=10, alphabet="abcdefghijklmnopqrstuvwxyz0123456789"):
    h = int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest(), "big")
    out = ""
    for _ in range(n):
        h, r = divmod(h, len(alphabet))
        out += alphabet[r]
    return out


def project_number(project):
    return str(100000000000 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % 900000000000)


class ApiError(Exception):
    """An error the client receives as {"error": {...}}."""

    def __init__(self, status, message, details=None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details
        self.http = CODES[status][1]

    def body(self):
        e = {"code": self.http, "message": self.message, "status": self.status}
        if self.details:
            e["details"] = self.details
        return {"error": e}


def invalid(message, field=None, description=None):
    details = None
    if field is not None:
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": description or message}]}]
    return ApiError("INVALID_ARGUMENT", message, details)


def violation(request, field, rule):
    """Cloud Run's form: `Violation in CreateServiceRequest.service_id: RULE`."""
    where = f"Violation in {request}.{field}"
    return invalid(f"{where}: {rule}", where, rule)


def service_not_found(project, location, sid):
    return ApiError("NOT_FOUND", f"Resource '{sid}' of kind 'SERVICE' in region '{location}' "
                                 f"in project '{project}' does not exist.")


def entity_not_found():
    return ApiError("NOT_FOUND", "Requested entity was not found.")


def url_not_found(path):
    return ApiError("NOT_FOUND", f"The requested URL {path} was not found on this server.")


# --------------------------------------------------------------------------
# Input: known fields only, camelCase, enums as names.

def normalize(value, kind, where, msg="Service"):
    """value as sent, checked against kind; returns it camelCased with enum
    names. `where` is the path Google's errors name ('service.template')."""
    if isinstance(kind, dict) and kind and all(isinstance(v, int) for v in kind.values()):
        names = {v: k for k, v in kind.items()}
        if isinstance(value, int) and not isinstance(value, bool) and value in names:
            return names[value]
        if isinstance(value, str) and value in kind:
            return value
        raise invalid(f"Invalid value at '{where}' ({_type_name(kind)}), {json.dumps(value)}", where,
                      f"Invalid value at '{where}' ({_type_name(kind)}), {json.dumps(value)}")
    if kind in ("s", "any"):
        return value
    if kind == "map":
        if not isinstance(value, dict):
            raise _not_object(where, value)
        return value
    if kind.startswith("["):
        if not isinstance(value, list):
            raise invalid(f"Invalid value at '{where}', expected a list", where)
        return [normalize(v, kind[1:-1], f"{where}[{i}]") for i, v in enumerate(value)]
    fields = MESSAGES[kind]
    if not isinstance(value, dict):
        raise _not_object(where, value)
    out = {}
    for k, v in value.items():
        key = camel(k)
        if key not in fields:
            at = f" at '{where}'" if where else ""
            m = f'Invalid JSON payload received. Unknown name "{k}"{at}: Cannot find field.'
            raise invalid(m, where, m)
        if v is None:
            continue
        out[key] = normalize(v, fields[key], f"{where}.{key}" if where else key)
    return out


def _type_name(table):
    first = next(iter(table))
    return {"INGRESS_TRAFFIC_UNSPECIFIED": "type.googleapis.com/google.cloud.run.v2.IngressTraffic",
            "LAUNCH_STAGE_UNSPECIFIED": "type.googleapis.com/google.api.LaunchStage"}.get(first, "enum")


def _not_object(where, value):
    m = f"Invalid value at '{where}', {json.dumps(value)}: Proto field is not repeating, cannot start list." \
        if isinstance(value, list) else f"Invalid value at '{where}', {json.dumps(value)}"
    return invalid(m, where, m)


# Output: proto3 JSON drops default values; enums become numbers on request.

def render(value, kind, ints):
    if isinstance(kind, dict) and kind and all(isinstance(v, int) for v in kind.values()):
        if value in (None, "", 0) or kind.get(value) == 0:
            return None
        return kind.get(value, value) if ints else value
    if kind == "map":
        return value if value else None
    if kind == "any":
        return value if value not in (None, "", 0, False, [], {}) else None
    if kind == "s":
        return value if value not in (None, "", 0, False, [], "0") else None
    if kind.startswith("["):
        items = [render(v, kind[1:-1], ints) for v in value or []]
        items = [i if i is not None else {} for i in items]
        return items or None
    out = {}
    fields = MESSAGES[kind]
    # Fields in the order of the .proto, as Google's front end sends them.
    for k in sorted(value, key=lambda k: list(fields).index(k) if k in fields else len(fields)):
        r = render(value[k], fields.get(k, "any"), ints)
        if r is not None:
            out[k] = r
    return out or None


def render_service(svc, ints):
    src = {k: svc[k] for k in MESSAGES["Service"] if k in svc}
    for k in INT64:
        if src.get(k):
            src[k] = str(src[k])
    return render(src, "Service", ints) or {}


# --------------------------------------------------------------------------
# The store

def _without_revision(template):
    return {k: v for k, v in template.items() if k != "revision"}


class Store:
    def __init__(self, deploy_seconds, projects):
        self.lock = threading.Condition()
        self.deploy_seconds = deploy_seconds
        self.projects = set(projects) if projects else None
        self.services = {}    # name -> record
        self.operations = {}  # name -> operation record

    # Records: {"svc": Service dict, "project", "location", "id",
    #           "revisions": {revision name: template}, "revision_count",
    #           "serving": {template_of_ready, traffic_statuses, ...},
    #           "policy": {...}, "pending": op name or None}
    # Operations: {"name", "metadata", "deadline", "done", "outcome":
    #              ("response", svc) | ("error", {...}), "service": name,
    #              "fail": message or None}

    def check_project(self, project, location, sid, verb):
        if self.projects is not None and project not in self.projects:
            resource = f"projects/{project}/locations/{location}" + (f"/services/{sid}" if sid else "")
            raise ApiError("PERMISSION_DENIED", f"Permission 'run.services.{verb}' denied on resource "
                                                f"'{resource}' (or resource may not exist).")

    def advance(self):
        """Finish the operations whose time has come (called on every request)."""
        now = time.monotonic()
        for op in list(self.operations.values()):
            if not op["done"] and op["deadline"] <= now:
                self._finish(op)

    def _finish(self, op):
        rec = self.services.get(op["service"])
        op["done"] = True
        if rec is None or rec.get("pending") != op["name"]:
            op.setdefault("outcome", ("response", op["metadata"]))
            self.lock.notify_all()
            return
        rec["pending"] = None
        svc = rec["svc"]
        t = now_rfc3339()
        svc["reconciling"] = False
        if op["fail"]:
            cond = {"type": "Ready", "state": "CONDITION_FAILED", "message": op["fail"], "lastTransitionTime": t}
            svc["terminalCondition"] = cond
            svc["conditions"] = [
                {"type": "RoutesReady", "state": "CONDITION_FAILED", "message": op["fail"], "lastTransitionTime": t},
                {"type": "ConfigurationsReady", "state": "CONDITION_FAILED", "message": op["fail"],
                 "lastTransitionTime": t},
            ]
            op["outcome"] = ("error", {"code": CODES["FAILED_PRECONDITION"][0], "message": op["fail"]})
        else:
            svc["observedGeneration"] = svc["generation"]
            svc["latestReadyRevision"] = svc.get("latestCreatedRevision", "")
            svc["terminalCondition"] = {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": t}
            svc["conditions"] = [
                {"type": "RoutesReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": t},
                {"type": "ConfigurationsReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": t},
            ]
            svc["trafficStatuses"] = self._traffic_statuses(rec)
            svc["uri"] = rec["uri"]
            svc["urls"] = rec["urls"]
        self._etag(svc)
        if not op["fail"]:
            op["outcome"] = ("response", copy.deepcopy(svc))
        self.lock.notify_all()

    def _traffic_statuses(self, rec):
        svc = rec["svc"]
        out = []
        for t in svc.get("traffic") or []:
            s = {"type": t.get("type", ""), "revision": t.get("revision", ""), "percent": t.get("percent", 0)}
            if t.get("tag"):
                s["tag"] = t["tag"]
                s["uri"] = rec["uri"].replace("https://", f"https://{t['tag']}---", 1)
            out.append(s)
        return out

    @staticmethod
    def _etag(svc):
        state = json.dumps([svc.get("generation"), svc.get("updateTime"), svc.get("terminalCondition"),
                            svc.get("reconciling")], sort_keys=True)
        a = base64.urlsafe_b64encode(hashlib.sha256(state.encode()).digest()[:12]).decode().rstrip("=")
        b = base64.urlsafe_b64encode(svc["name"].encode()).decode().rstrip("=")
        svc["etag"] = f'"{a}/{b}"'

    def _new_operation(self, project, location, svc, service_name, deadline, fail=None, done=False):
        name = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"
        op = {"name": name, "metadata": copy.deepcopy(svc), "deadline": deadline, "done": done, "fail": fail,
              "service": service_name}
        if done:
            op["outcome"] = ("response", copy.deepcopy(svc))
        self.operations[name] = op
        return op

    # ---- services

    def _validate(self, svc, request):
        tpl = svc.get("template")
        if tpl is None:
            raise violation(request, "service.template", "should be set.")
        containers = tpl.get("containers") or []
        if not containers:
            raise violation(request, "service.template.containers", "should contain at least one container.")
        for i, c in enumerate(containers):
            image = c.get("image", "")
            if not isinstance(image, str) or not IMAGE.match(image):
                raise violation(request, f"service.template.containers[{i}].image", IMAGE_RULE)
            reserved = [e.get("name") for e in c.get("env") or [] if e.get("name") in ("PORT", "K_SERVICE",
                                                                                         "K_REVISION",
                                                                                         "K_CONFIGURATION")]
            if reserved:
                raise violation(request, f"service.template.containers[{i}].env",
                                f"The following reserved env names were provided: {', '.join(reserved)}. "
                                "These values are automatically set by the system.")
            for j, e in enumerate(c.get("env") or []):
                if not e.get("name"):
                    raise violation(request, f"service.template.containers[{i}].env[{j}].name", "should be set.")
        if len(containers) > 1 and sum(1 for c in containers if c.get("ports")) != 1:
            raise violation(request, "service.template.containers",
                            "exactly one container must specify a port (the ingress container).")
        traffic = svc.get("traffic")
        if traffic:
            try:
                total = sum(int(t.get("percent") or 0) for t in traffic)
            except (TypeError, ValueError):
                raise violation(request, "service.traffic", "percent must be a number.")
            if total != 100:
                raise violation(request, "service.traffic",
                                f"traffic percentages must add up to 100, but they add up to {total}.")

    def _defaults(self, svc, project):
        svc.setdefault("ingress", "INGRESS_TRAFFIC_ALL")
        svc.setdefault("launchStage", "GA")
        if not svc.get("traffic"):
            svc["traffic"] = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]
        tpl = svc["template"]
        tpl.setdefault("scaling", {}).setdefault("maxInstanceCount", 100)
        tpl.setdefault("timeout", "300s")
        tpl.setdefault("serviceAccount", f"{project_number(project)}-compute@developer.gserviceaccount.com")
        tpl.setdefault("maxInstanceRequestConcurrency", 80)
        containers = tpl["containers"]
        for i, c in enumerate(containers):
            res = c.setdefault("resources", {})
            limits = res.setdefault("limits", {})
            limits.setdefault("cpu", "1000m")
            limits.setdefault("memory", "512Mi")
            res.setdefault("cpuIdle", True)
            res.setdefault("startupCpuBoost", True)
            if len(containers) == 1 and not c.get("ports"):
                c["ports"] = [{"name": "http1", "containerPort": 8080}]
            for p in c.get("ports") or []:
                p.setdefault("name", "http1")
                p.setdefault("containerPort", 8080)
            if c.get("ports"):
                c.setdefault("startupProbe", {"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1,
                                              "tcpSocket": {"port": c["ports"][0]["containerPort"]}})

    @staticmethod
    def _port(svc):
        for c in svc["template"]["containers"]:
            for p in c.get("ports") or []:
                return p.get("containerPort", 8080)
        return 8080

    def _new_record(self, project, location, sid):
        h = digest(project, n=10)
        code = REGION_CODES.get(location) or "".join(p[0] for p in location.split("-"))[:2]
        uri = f"https://{sid}-{h}-{code}.a.run.app"
        return {"project": project, "location": location, "id": sid, "revisions": {}, "revision_count": 0,
                "policy": {}, "pending": None, "uri": uri,
                "urls": [f"https://{sid}-{project_number(project)}.{location}.run.app", uri]}

    def _apply_template(self, rec, svc, old_template):
        """A new revision when the template changed; returns its name or None."""
        tpl = svc["template"]
        if old_template is not None and tpl == old_template:
            return None
        wanted = tpl.get("revision")
        prefix = f"projects/{rec['project']}/locations/{rec['location']}/revisions/"
        if wanted:
            known = rec["revisions"].get(wanted)
            if known is not None:
                if _without_revision(known) != _without_revision(tpl):
                    raise ApiError("ALREADY_EXISTS", f"Revision named '{wanted}' with different configuration "
                                                     "already exists.")
                svc["latestCreatedRevision"] = prefix + wanted
                return None
            rev = wanted
        else:
            n = rec["revision_count"] + 1
            rev = f"{rec['id']}-{n:05d}-{digest(rec['project'], rec['location'], rec['id'], n, n=3)}"
        rec["revision_count"] += 1
        rec["revisions"][rev] = copy.deepcopy(tpl)
        svc["latestCreatedRevision"] = prefix + rev
        return rev

    def _fail_message(self, svc, rev):
        if rev is None:
            return None
        if any("fail-deploy" in c.get("image", "") for c in svc["template"]["containers"]):
            return FAILED_CONTAINER.format(rev=rev, port=self._port(svc))
        return None

    def _start(self, rec, svc, rev):
        """Begin a deploy of the service as it now is; returns the operation."""
        t = now_rfc3339()
        svc["reconciling"] = True
        svc["terminalCondition"] = {"type": "Ready", "state": "CONDITION_RECONCILING", "lastTransitionTime": t}
        svc["conditions"] = [
            {"type": "RoutesReady", "state": "CONDITION_PENDING", "lastTransitionTime": t},
            {"type": "ConfigurationsReady", "state": "CONDITION_RECONCILING" if rev else "CONDITION_SUCCEEDED",
             "lastTransitionTime": t},
        ]
        self._etag(svc)
        op = self._new_operation(rec["project"], rec["location"], svc, svc["name"],
                                 time.monotonic() + self.deploy_seconds, self._fail_message(svc, rev))
        rec["pending"] = op["name"]
        return op

    def create(self, project, location, sid, body, validate_only):
        self.check_project(project, location, sid, "create")
        if not sid:
            raise violation("CreateServiceRequest", "service_id", "must be set.")
        if not SERVICE_ID.match(sid):
            raise violation("CreateServiceRequest", "service_id", SERVICE_ID_RULE)
        given = normalize(body if body is not None else {}, "Service", "service")
        name = f"projects/{project}/locations/{location}/services/{sid}"
        if name in self.services:
            raise ApiError("ALREADY_EXISTS", f"Resource '{sid}' already exists.")
        svc = {k: copy.deepcopy(given[k]) for k in SETTABLE if k in given}
        self._validate(svc, "CreateServiceRequest")
        self._defaults(svc, project)
        t = now_rfc3339()
        svc.update(name=name, uid=str(uuid.uuid4()), generation=1, createTime=t, updateTime=t, creator=CREATOR,
                   lastModifier=CREATOR)
        rec = self._new_record(project, location, sid)
        rec["svc"] = svc
        if validate_only:
            svc.pop("uid")
            self._etag(svc)
            return self._new_operation(project, location, svc, name, 0, done=True)
        rev = self._apply_template(rec, svc, None)
        self.services[name] = rec
        return self._start(rec, svc, rev)

    def _record(self, project, location, sid, verb):
        self.check_project(project, location, sid, verb)
        rec = self.services.get(f"projects/{project}/locations/{location}/services/{sid}")
        if rec is None:
            raise service_not_found(project, location, sid)
        return rec

    def get(self, project, location, sid):
        return self._record(project, location, sid, "get")["svc"]

    def list(self, project, location, page_size, page_token):
        self.check_project(project, location, None, "list")
        prefix = f"projects/{project}/locations/{location}/services/" if location != "-" else None
        names = sorted(n for n, r in self.services.items()
                       if (n.startswith(prefix) if prefix else r["project"] == project))
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode()) if page_token else 0
        except (ValueError, UnicodeDecodeError):
            raise invalid("Invalid page token.", "page_token", "Invalid page token.")
        size = page_size if page_size > 0 else 100
        page = names[start:start + size]
        out = {"services": [self.services[n]["svc"] for n in page]}
        if start + size < len(names):
            out["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return out

    def update(self, project, location, sid, body, mask, allow_missing, validate_only):
        self.check_project(project, location, sid, "update")
        name = f"projects/{project}/locations/{location}/services/{sid}"
        if name not in self.services:
            if not allow_missing:
                raise service_not_found(project, location, sid)
            if not SERVICE_ID.match(sid):
                raise violation("UpdateServiceRequest", "service.name", SERVICE_ID_RULE)
            given = dict(body or {})
            given.pop("etag", None)
            return self.create(project, location, sid, given, validate_only)
        rec = self.services[name]
        given = normalize(body if body is not None else {}, "Service", "service")
        cur = rec["svc"]
        if given.get("etag") and given["etag"] != cur["etag"]:
            raise ApiError("ABORTED", "etag mismatch: the service has changed since the etag was read.")
        if mask:
            new = copy.deepcopy({k: cur[k] for k in SETTABLE if k in cur})
            for path in mask:
                parts = [camel(p) for p in path.split(".")]
                if parts[0] not in SETTABLE:
                    raise invalid(f"Invalid field mask path: {path}", "update_mask",
                                  f"Invalid field mask path: {path}")
                src, dst = given, new
                for p in parts[:-1]:
                    src = src.get(p) if isinstance(src, dict) else None
                    dst = dst.setdefault(p, {})
                if isinstance(src, dict) and parts[-1] in src:
                    dst[parts[-1]] = copy.deepcopy(src[parts[-1]])
                else:
                    dst.pop(parts[-1], None)
        else:
            new = {k: copy.deepcopy(given[k]) for k in SETTABLE if k in given}
        self._validate(new, "UpdateServiceRequest")
        self._defaults(new, project)
        old = {k: cur[k] for k in SETTABLE if k in cur}
        if validate_only:
            preview = copy.deepcopy(cur)
            preview.update(new)
            return self._new_operation(project, location, preview, name, 0, done=True)
        if new == old:
            return self._new_operation(project, location, cur, name, 0, done=True)
        if rec["pending"]:
            self._finish(self.operations[rec["pending"]])
        old_template = rec["revisions"].get(cur.get("latestCreatedRevision", "").rsplit("/", 1)[-1])
        candidate = copy.deepcopy(cur)
        for k in SETTABLE:
            candidate.pop(k, None)
        candidate.update(new)
        rev = self._apply_template(rec, candidate, old_template)
        candidate["generation"] = int(cur["generation"]) + 1
        candidate["updateTime"] = now_rfc3339()
        candidate["lastModifier"] = CREATOR
        rec["svc"] = candidate
        return self._start(rec, candidate, rev)

    def delete(self, project, location, sid, etag, validate_only):
        rec = self._record(project, location, sid, "delete")
        svc = rec["svc"]
        if etag and etag != svc["etag"]:
            raise ApiError("ABORTED", "etag mismatch: the service has changed since the etag was read.")
        if validate_only:
            return self._new_operation(project, location, svc, svc["name"], 0, done=True)
        if rec["pending"]:
            self._finish(self.operations[rec["pending"]])
        del self.services[svc["name"]]
        gone = copy.deepcopy(svc)
        gone["deleteTime"] = now_rfc3339()
        return self._new_operation(project, location, gone, svc["name"], 0, done=True)

    # ---- operations

    def operation(self, name):
        op = self.operations.get(name)
        if op is None:
            raise entity_not_found()
        return op

    def wait(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            self.advance()
            op = self.operation(name)
            left = min(deadline, op["deadline"]) - time.monotonic()
            if op["done"] or left <= 0:
                return op
            self.lock.wait(min(left, 0.05) + 0.001)

    # ---- IAM

    def get_policy(self, project, location, sid):
        rec = self._record(project, location, sid, "getIamPolicy")
        return self._policy_out(rec)

    @staticmethod
    def _policy_out(rec):
        p = rec["policy"]
        if not p.get("bindings") and not p.get("auditConfigs"):
            return {"etag": p.get("etag", "ACAB")} if p.get("version") is None else \
                {"version": p["version"], "etag": p.get("etag", "ACAB")}
        return {k: p[k] for k in ("version", "bindings", "auditConfigs", "etag") if k in p}

    def set_policy(self, project, location, sid, policy):
        rec = self._record(project, location, sid, "setIamPolicy")
        if not isinstance(policy, dict):
            raise invalid("Invalid JSON payload received. Expected an object for 'policy'.", "policy")
        current = self._policy_out(rec)["etag"]
        if policy.get("etag") and etag_bytes(policy["etag"]) != etag_bytes(current):
            raise ApiError("ABORTED", IAM_CONFLICT)
        bindings = []
        for i, b in enumerate(policy.get("bindings") or []):
            if not isinstance(b, dict) or not str(b.get("role", "")).startswith(("roles/", "projects/",
                                                                                   "organizations/")):
                raise invalid(f"Role ({b.get('role') if isinstance(b, dict) else b}) does not exist in the "
                              "resource's hierarchy.", f"policy.bindings[{i}].role")
            members = [m for m in b.get("members") or []]
            if members:
                nb = {"role": b["role"], "members": members}
                if b.get("condition"):
                    nb["condition"] = b["condition"]
                bindings.append(nb)
        # Real etags are 8 bytes that start 0x07 0x0N ("Bw..."); the version is
        # 3 only when a binding has a condition, whatever the client asked for.
        r = os.urandom(7)
        etag = base64.b64encode(bytes([7, r[0] & 0x0F]) + r[1:]).decode()
        conditional = any("condition" in b for b in bindings)
        rec["policy"] = {"version": 3 if conditional else 1, "etag": etag}
        if bindings:
            rec["policy"]["bindings"] = bindings
        if policy.get("auditConfigs"):
            rec["policy"]["auditConfigs"] = policy["auditConfigs"]
        return self._policy_out(rec)

    def test_permissions(self, project, location, sid, permissions):
        self._record(project, location, sid, "testIamPermissions")
        granted = [p for p in permissions or [] if isinstance(p, str) and p.startswith("run.")]
        return {"permissions": granted} if granted else {}


def etag_bytes(text):
    """A bytes field in JSON: base64, either alphabet (apitools sends the
    URL-safe one), padding optional."""
    t = str(text).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(t + "=" * (-len(t) % 4), validate=True)
    except ValueError:
        raise invalid(f"Invalid value at 'policy.etag' (TYPE_BYTES), {json.dumps(text)}", "policy.etag")


def operation_json(op, ints):
    out = {"name": op["name"], "metadata": dict({"@type": SERVICE_TYPE}, **render_service(op["metadata"], ints))}
    if op["done"]:
        out["done"] = True
        kind, value = op["outcome"]
        if kind == "error":
            out["error"] = value
        else:
            out["response"] = dict({"@type": SERVICE_TYPE}, **render_service(value, ints))
    return out


def parse_duration(text, default):
    m = re.fullmatch(r"(\d+(?:\.\d*)?)s", text or "")
    return float(m.group(1)) if m else default


# --------------------------------------------------------------------------
# HTTP

SERVICES = re.compile(r"^/(v1|v2)/projects/([^/]+)/locations/([^/]+)/services(?:/([^/:]+))?(?::([A-Za-z]+))?$")
OPERATIONS = re.compile(r"^/v2/projects/([^/]+)/locations/([^/]+)/operations(?:/([^/:]+))?(?::([A-Za-z]+))?$")


class Handler(fakelib.LoggingHandler):
    server_version = "kiln-fake-cloudrun"

    def _send_json(self, code, obj, headers=()):
        data = (json.dumps(obj, indent=None if self._compact else 2) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Vary", "Origin, X-Origin, Referer")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self):
        self._logged = False
        self._log_body = None
        self._compact = False
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            raw = b""
        self._body, self._bad_json = None, None
        if raw.strip():
            try:
                self._body = json.loads(raw.decode("utf-8"))
                self._log_body = self._body
            except (ValueError, UnicodeDecodeError) as e:
                self._bad_json = str(e)
        headers = ()
        try:
            cfg = self.server.cfg
            if cfg.token is not None:
                auth = self.headers.get("Authorization") or ""
                if not hmac.compare_digest(auth.encode(), f"Bearer {cfg.token}".encode()):
                    headers = (("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"'),)
                    raise ApiError("UNAUTHENTICATED", UNAUTHENTICATED)
            with cfg.store.lock:
                cfg.store.advance()
            self._route()
        except ApiError as e:
            self._send_json(e.http, e.body(), headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake: say so as the real API would
            traceback.print_exc()
            self._send_json(500, ApiError("INTERNAL", f"Internal error encountered. ({e})").body())
        finally:
            if not self._logged:
                self._log(None)

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def _json_body(self, where=""):
        if self._bad_json is not None:
            m = f"Invalid JSON payload received. {self._bad_json}"
            raise invalid(m, where, m)
        return self._body

    def _route(self):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        ints = "enum-encoding=int" in q.get("$alt", "")
        self._compact = q.get("$prettyPrint") in ("0", "false") or q.get("prettyPrint") in ("0", "false")
        path = unquote(u.path)
        store = self.server.cfg.store
        m = SERVICES.match(path)
        if m:
            version, project, location, sid, verb = m.groups()
            return self._services(store, version, project, location, sid, verb, q, ints)
        m = OPERATIONS.match(path)
        if m:
            project, location, oid, verb = m.groups()
            return self._operations(store, project, location, oid, verb, q, ints)
        raise url_not_found(u.path)

    def _services(self, store, version, project, location, sid, verb, q, ints):
        cmd = self.command
        bool_q = lambda k: q.get(k, "false").lower() in ("true", "1")
        if verb is not None:
            if sid is None:
                raise url_not_found(urlsplit(self.path).path)
            if verb == "getIamPolicy" and cmd in ("GET", "POST"):
                if cmd == "POST":
                    self._json_body()
                with store.lock:
                    return self._send_json(200, store.get_policy(project, location, sid))
            if verb == "setIamPolicy" and cmd == "POST":
                body = self._json_body() or {}
                if not isinstance(body, dict):
                    raise invalid("Invalid JSON payload received. Expected an object.")
                with store.lock:
                    return self._send_json(200, store.set_policy(project, location, sid, body.get("policy")))
            if verb == "testIamPermissions" and cmd == "POST":
                body = self._json_body() or {}
                with store.lock:
                    return self._send_json(200, store.test_permissions(project, location, sid,
                                                                       (body or {}).get("permissions")))
            raise url_not_found(urlsplit(self.path).path)
        if version != "v2":
            raise url_not_found(urlsplit(self.path).path)
        if sid is None:
            if cmd == "GET":
                try:
                    size = int(q.get("pageSize") or q.get("page_size") or 0)
                except ValueError:
                    raise invalid(f"Invalid value at 'page_size' (TYPE_INT32), \"{q.get('pageSize')}\"",
                                  "page_size")
                with store.lock:
                    out = store.list(project, location, size, q.get("pageToken") or q.get("page_token"))
                    services = [render_service(s, ints) for s in out["services"]]
                res = {}
                if services:
                    res["services"] = services
                if out.get("nextPageToken"):
                    res["nextPageToken"] = out["nextPageToken"]
                return self._send_json(200, res)
            if cmd == "POST":
                body = self._json_body("service")
                with store.lock:
                    op = store.create(project, location, q.get("serviceId") or q.get("service_id") or "",
                                      body, bool_q("validateOnly") or bool_q("validate_only"))
                    return self._send_json(200, operation_json(op, ints))
            raise url_not_found(urlsplit(self.path).path)
        if cmd == "GET":
            with store.lock:
                return self._send_json(200, render_service(store.get(project, location, sid), ints))
        if cmd == "PATCH":
            body = self._json_body("service")
            mask = [p for p in (q.get("updateMask") or q.get("update_mask") or "").split(",") if p]
            with store.lock:
                op = store.update(project, location, sid, body, mask,
                                  bool_q("allowMissing") or bool_q("allow_missing"),
                                  bool_q("validateOnly") or bool_q("validate_only"))
                return self._send_json(200, operation_json(op, ints))
        if cmd == "DELETE":
            with store.lock:
                op = store.delete(project, location, sid, q.get("etag"),
                                  bool_q("validateOnly") or bool_q("validate_only"))
                return self._send_json(200, operation_json(op, ints))
        raise url_not_found(urlsplit(self.path).path)

    def _operations(self, store, project, location, oid, verb, q, ints):
        cmd = self.command
        prefix = f"projects/{project}/locations/{location}/operations"
        if oid is None:
            if cmd != "GET" or verb is not None:
                raise url_not_found(urlsplit(self.path).path)
            with store.lock:
                ops = [operation_json(o, ints) for n, o in sorted(store.operations.items())
                       if n.startswith(prefix + "/")]
            return self._send_json(200, {"operations": ops} if ops else {})
        name = f"{prefix}/{oid}"
        if verb is None and cmd == "GET":
            with store.lock:
                return self._send_json(200, operation_json(store.operation(name), ints))
        if verb is None and cmd == "DELETE":
            with store.lock:
                store.operation(name)
                del store.operations[name]
            return self._send_json(200, {})
        if verb == "wait" and cmd == "POST":
            body = self._json_body() or {}
            timeout = parse_duration(body.get("timeout") if isinstance(body, dict) else None, 60.0)
            with store.lock:
                return self._send_json(200, operation_json(store.wait(name, timeout), ints))
        raise url_not_found(urlsplit(self.path).path)


def main(argv=None):
    ap = fakelib.arg_parser("A fake Cloud Run Admin API v2 for tests (see the header).")
    ap.add_argument("--deploy-seconds", type=float, default=1.0,
                    help="how long a simulated deploy (an operation) takes")
    ap.add_argument("--project", action="append", default=[],
                    help="a project that exists (repeatable); without it every project exists")
    args = ap.parse_args(argv)
    if args.deploy_seconds < 0:
        ap.error("--deploy-seconds must not be negative")
    server = fakelib.make_server(args, Handler, Store(args.deploy_seconds, args.project))
    return fakelib.serve(server, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
