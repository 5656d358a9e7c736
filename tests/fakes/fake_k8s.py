#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Kubernetes API server for kiln's tests.

No real kube-apiserver can run on the test machines (see
../shared/reference/real-components.md section 2), so this stands in for one.
It is checked by real clients, kubectl 1.32 and Debian's kubectl 1.20
(tests/integration/test_fake_k8s.sh), and is meant to answer a client such as
kiln's k8s-deploy plugin the way a real API server would: the same status
codes, Status objects and messages where that was cheap to do.

Usage:
  python3 fake_k8s.py --port-file FILE [--port 0] [--log FILE] [--token TOKEN]
                      [--namespaces default,kube-system,kube-public]
                      [--rollout-seconds 1.0] [--tls-cert PEM --tls-key PEM]
Listens on 127.0.0.1, plain HTTP unless --tls-cert/--tls-key are given (then
HTTPS with that certificate: kubectl sends a bearer token only over HTTPS,
kubernetes/kubectl#744). With --port 0 the kernel picks a free port; the port is
written to --port-file (a temporary file renamed into place) once the socket
listens. --log FILE gets one JSON object per request:
  {"method", "path" (no query), "query" (first value of each parameter),
   "content_type", "authorization" (true if the header was sent; never the
   token), "user_agent", "body" (the JSON or YAML body parsed, else null),
   "status"}
written when the response status is sent. SIGTERM or SIGINT ends open watches,
stops the server and exits 0.

What it implements:
  - GET /version (v1.32.0+kiln-fake), /api (APIVersions), /apis
    (APIGroupList: apps/v1, networking.k8s.io/v1, batch/v1), /apis/GROUP
    (APIGroup), /api/v1 and /apis/GROUP/VERSION (APIResourceList), /healthz,
    /livez, /readyz. Always JSON: aggregated discovery (v2) is not served, so
    clients fall back to the plain documents, as they do for older servers.
  - Resources: v1 namespaces (cluster-scoped), services, configmaps, secrets,
    serviceaccounts, pods; apps/v1 deployments (+ deployments/status, GET
    only), statefulsets, daemonsets; networking.k8s.io/v1 ingresses;
    batch/v1 jobs, cronjobs. One generic store for all of them.
  - URL forms: /api/v1/namespaces/NS/PLURAL[/NAME[/status]],
    /api/v1/PLURAL[/NAME] for cluster-scoped ones,
    /apis/GROUP/VERSION/namespaces/NS/PLURAL[/NAME[/status]], and
    /api[s]/.../PLURAL (GET) to list or watch across all namespaces.
  - GET one object (404 `deployments.apps "web" not found`, core:
    `services "web" not found`); GET a list (kind <Kind>List, items without
    kind/apiVersion as the real server sends them, metadata.resourceVersion);
    fieldSelector on metadata.name / metadata.namespace (=, ==, !=);
    labelSelector (=, ==, !=, in, notin, key, !key).
  - watch=true (or 1): chunked JSON lines {"type": ADDED|MODIFIED|DELETED,
    "object": ...}. Without resourceVersion (or with "0") the current objects
    come first as ADDED, then changes; with resourceVersion=N only changes
    after N, as on a real server (a version older than the kept history gets
    an ERROR event with a 410 Expired Status). Ends after timeoutSeconds, at
    shutdown, or when the client goes away.
  - Server-side apply: PATCH with Content-Type application/apply-patch+yaml
    (else 415 UnsupportedMediaType), query fieldManager (else 422 Invalid
    `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is
    required for apply patch`, which is what a real server answers), force,
    dryRun=All. Body JSON or YAML. 400 for an undecodable body (`error
    decoding YAML: ...`), apiVersion/kind not those of the URL (`invalid
    object type: apps/v1, Kind=Service`), metadata.managedFields set, a
    namespace that differs from the URL's (`the namespace of the provided
    object does not match the namespace sent on the request`) or a name that
    differs (`the name of the object (a) does not match the name on the URL
    (b)`); 404 `namespaces "X" not found` when the namespace does not exist
    (those of --namespaces exist from the start; applying a Namespace creates
    one). 201 on create, 200 otherwise; the stored object, status included,
    is the response body.
  - Field ownership: each manager's last applied configuration is kept; the
    object is those configurations merged in the order they were applied
    (lists of maps merge by key: name; containerPort+protocol or
    port+protocol for "ports"; mountPath for volumeMounts; other lists are
    atomic), so a field no manager applies any more disappears. A manager
    that sets a field another manager applied, to a different value, gets
    409 Conflict `Apply failed with 1 conflict: conflict with "other":
    .spec.replicas` (real wording, causes of type FieldManagerConflict);
    force=true takes the fields over.
  - metadata: uid, resourceVersion (one global counter), generation (1 on
    create, +1 when anything outside metadata and status changes),
    creationTimestamp, managedFields (one Apply entry per manager, with an
    approximate fieldsV1, and a kube-controller-manager status entry for a
    simulated Deployment). An apply that changes nothing keeps the
    resourceVersion and sends no watch event.
  - A few server defaults: Deployment replicas 1, revisionHistoryLimit 10,
    progressDeadlineSeconds 600, RollingUpdate 25%/25%; Service type
    ClusterIP, a clusterIP from 10.96.0.0/16, port protocol TCP and
    targetPort; Secret type Opaque and stringData moved into data (base64);
    Namespace label kubernetes.io/metadata.name, finalizer kubernetes, phase
    Active.
  - Deployment rollout, simulated: when the generation changes the status
    moves over --rollout-seconds: not yet observed for the first tenth, then
    observedGeneration = generation and updatedReplicas/readyReplicas/
    availableReplicas ramp to spec.replicas in up to three steps, old pods
    going away, each change a new resourceVersion and watch event; conditions
    Available and Progressing (NewReplicaSetCreated, ReplicaSetUpdated, then
    NewReplicaSetAvailable). Zero counts are omitted, as the real server
    omits them. If any container image contains "fail-rollout" the new pods
    never become available and after --rollout-seconds Progressing turns
    False, reason ProgressDeadlineExceeded, `ReplicaSet "web-<hash>" has
    timed out progressing.` (kubectl: "exceeded its progress deadline").
  - DELETE of one object: 200 with a Success Status (details name, group,
    kind, uid), DELETED watch events; deleting a Namespace deletes what is in
    it at once.
  - --token: every request (discovery and /version too) must carry
    "Authorization: Bearer TOKEN", else 401 Status Unauthorized.
  - --token-file FILE: the bearer tokens listed there ("TOKEN [END]" a line,
    END in Unix seconds) authenticate as well, until their END: a token that
    expired gets 401 Unauthorized, as a short-lived one (an exec plugin's)
    does on a real server. Read at each request.
  - --client-ca PEM (with --tls-cert): a client certificate signed by that
    CA authenticates a request as well (the log's "client_cn" names its
    CN); one signed by another CA fails the TLS handshake, as with
    kube-apiserver's --client-ca-file.
  - Every error is a Status object (kind, apiVersion v1, metadata {}, status
    Failure, message, reason, details where the real server gives them,
    code).

Limits, compared with a real API server:
  - 127.0.0.1 only; plain HTTP by default (kubectl then sends no token, so
    use --token with kubectl only together with --tls-cert/--tls-key); no
    HTTP/2; the only authentication is one bearer token or any certificate
    of one CA (no user names or groups), and there is no authorization
    (RBAC).
  - No OpenAPI: /openapi/v2, /openapi/v3 and /swagger-2.0.0.pb-v1 answer 404,
    so kubectl needs --validate=false.
  - No schema validation, no admission beyond "the namespace exists", no
    defaulting beyond the list above, no strategic-merge, merge or JSON
    patch (415), no PUT update, DELETE of a collection, or
    subresource writes (405). No protobuf, CBOR, YAML or Table responses:
    always JSON, so kubectl prints tables itself.
  - Field ownership is per field but approximate: no fieldsV1 from the
    client, no Update managers except the simulated controller, list keys
    guessed from field names, no set-valued lists.
  - Lists ignore limit/continue and resourceVersion; watches send no
    BOOKMARK events and keep the last 10000 events of history.
  - Pods (with --kubelet PODMAN, fake_kubelet.py): created by POST, run for
    real with podman, status as a kubelet writes it, pods/log (follow,
    timestamps, sinceTime; --log-break-every BYTES drops followed streams;
    --log-rotate-bytes BYTES rotates the log file; init containers run first)
    from a CRI log file, graceful deletes; see
    tests/fakes/README.md for what that kubelet does and does not do.
    PersistentVolumeClaims are Bound at once. Its node is a Node object;
    deleting it (kubectl delete node kiln-fake-node) makes a new node join
    and PodGC remove the Pods bound to the old one (fake_kubelet.py).
  - ownerReferences are kept and garbage-collected (background cascade, at
    once; see Store._collect_garbage): deleting an owner deletes what it
    owns, Pods gracefully; an object created for an owner that is gone is
    deleted at once.
  - Secrets: stored as sent (stringData moved into data, base64); the
    kubelet resolves env valueFrom.secretKeyRef from them.
  - ConfigMaps: binaryData must be base64 (else 400) and data plus
    binaryData (decoded) at most 1 MiB (else 422 `[]: Too long: must have at
    most 1048576 bytes`), as the real validation says; the kubelet mounts
    configMap and projected (configMap sources) volumes as files.
  - Only Deployments have a status simulation. StatefulSets, DaemonSets,
    Jobs, CronJobs, Pods and the rest are stored as applied (Namespaces get
    phase Active, Services loadBalancer {}); no pods or ReplicaSets are
    created.
  - Namespaces are deleted at once (no Terminating phase, no finalizers).
"""
import base64
import bisect
import copy
import hashlib
import hmac
import json
import math
import re
import select
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qs, urlsplit

import yaml

import fakelib

SERVER_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0+kiln-fake",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
    "platform": "linux/amd64",
}
ALL_VERBS = ["create", "delete", "get", "list", "patch", "watch"]
HISTORY = 10000


class Resource:
    def __init__(self, group, plural, singular, kind, namespaced, short=(), categories=()):
        self.group, self.version = group, "v1"
        self.gv = f"{group}/v1" if group else "v1"
        self.plural, self.singular, self.kind = plural, singular, kind
        self.namespaced, self.short, self.categories = namespaced, list(short), list(categories)

    @property
    def qualified(self):
        """How the real server names the resource in messages: deployments.apps."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self):
        d = {"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
             "kind": self.kind, "verbs": ALL_VERBS}
        if self.short:
            d["shortNames"] = self.short
        if self.categories:
            d["categories"] = self.categories
        return d


RESOURCES = [
    Resource("", "namespaces", "namespace", "Namespace", False, ["ns"]),
    Resource("", "services", "service", "Service", True, ["svc"], ["all"]),
    Resource("", "configmaps", "configmap", "ConfigMap", True, ["cm"]),
    Resource("", "secrets", "secret", "Secret", True),
    Resource("", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ["sa"]),
    Resource("", "pods", "pod", "Pod", True, ["po"], ["all"]),
    Resource("", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", True, ["pvc"]),
    Resource("", "nodes", "node", "Node", False, ["no"]),
    Resource("apps", "deployments", "deployment", "Deployment", True, ["deploy"], ["all"]),
    Resource("apps", "statefulsets", "statefulset", "StatefulSet", True, ["sts"], ["all"]),
    Resource("apps", "daemonsets", "daemonset", "DaemonSet", True, ["ds"], ["all"]),
    Resource("networking.k8s.io", "ingresses", "ingress", "Ingress", True, ["ing"]),
    Resource("batch", "jobs", "job", "Job", True, [], ["all"]),
    Resource("batch", "cronjobs", "cronjob", "CronJob", True, ["cj"], ["all"]),
]
BY_PLURAL = {(r.gv, r.plural): r for r in RESOURCES}
GROUP_VERSIONS = ["v1", "apps/v1", "networking.k8s.io/v1", "batch/v1"]
# Subresources served (GET only), as (groupVersion, plural, subresource).
SUBRESOURCES = {("apps/v1", "deployments", "status"), ("v1", "pods", "status"), ("v1", "pods", "log")}


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ApiError(Exception):
    """An error the client receives as a Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason}
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


def details(name, res):
    d = {"name": name}
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', details(name, res))


def path_not_found():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


# --------------------------------------------------------------------------
# YAML/JSON bodies, decoded as Kubernetes does: YAML converted to JSON, so
# timestamps stay strings and map keys become strings.

class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k) if not isinstance(k, bool) else str(k).lower(): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    return v


def decode_body(raw):
    """The body as JSON or YAML; raises ValueError with the parser's message."""
    text = raw.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return _jsonable(yaml.load(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise ValueError(str(e).replace("\n", " ")) from None


# --------------------------------------------------------------------------
# Field paths and merging, a small model of structured-merge-diff. A path is
# a tuple of ("f", field) and ("k", ((keyfield, value), ...)) elements.

MISSING = object()


def list_keys(field, items):
    """The key fields of an associative list, or None for an atomic list."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports" and all("containerPort" in i for i in items):
        return ("containerPort", "protocol")
    if field == "ports" and all("port" in i for i in items):
        return ("port", "protocol")
    if field == "volumeMounts" and all("mountPath" in i for i in items):
        return ("mountPath",)
    if field == "conditions" and all("type" in i for i in items):
        return ("type",)
    if all("name" in i for i in items):
        return ("name",)
    return None


def item_key(item, keys):
    return tuple((k, item.get(k, "TCP" if k == "protocol" else None)) for k in keys)


def leaves(node, field=None, prefix=()):
    """{path: value} for every scalar, atomic list or empty map under node."""
    out = {}
    keys = list_keys(field, node) if isinstance(node, list) else None
    if isinstance(node, dict) and node:
        for k, v in node.items():
            out.update(leaves(v, k, prefix + (("f", k),)))
    elif keys:
        for item in node:
            out.update(leaves(item, None, prefix + (("k", item_key(item, keys)),)))
    else:
        out[prefix] = node
    return out


def lookup(node, path):
    for kind, sel in path:
        if kind == "f":
            if not isinstance(node, dict) or sel not in node:
                return MISSING
            node = node[sel]
        else:
            if not isinstance(node, list):
                return MISSING
            keys = tuple(k for k, _ in sel)
            node = next((i for i in node if isinstance(i, dict) and item_key(i, keys) == sel), MISSING)
            if node is MISSING:
                return MISSING
    return node


def remove_path(node, path):
    """Remove the value at path, and maps or list items left empty by that."""
    kind, sel = path[0]
    if kind == "f":
        if not isinstance(node, dict) or sel not in node:
            return
        if len(path) > 1:
            remove_path(node[sel], path[1:])
        if len(path) == 1 or node[sel] in ({}, []):
            del node[sel]
        return
    keys = tuple(k for k, _ in sel)
    for i, item in enumerate(node if isinstance(node, list) else []):
        if isinstance(item, dict) and item_key(item, keys) == sel:
            if len(path) > 1:
                remove_path(item, path[1:])
            if len(path) == 1 or set(item) <= set(keys):
                del node[i]
            return


def merge(base, top, field=None):
    """top applied over base: maps and keyed lists merge, the rest is replaced."""
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for k, v in top.items():
            out[k] = merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(top, list):
        kb, kt = list_keys(field, base), list_keys(field, top)
        if kb and kb == kt:
            out = [copy.deepcopy(i) for i in base]
            index = {item_key(i, kb): n for n, i in enumerate(out)}
            for item in top:
                k = item_key(item, kb)
                if k in index:
                    out[index[k]] = merge(out[index[k]], item)
                else:
                    index[k] = len(out)
                    out.append(copy.deepcopy(item))
            return out
    return copy.deepcopy(top)


def path_string(path):
    """The path as the real server prints it: .spec.containers[name="web"].image"""
    s = ""
    for kind, sel in path:
        if kind == "f":
            s += "." + sel
        else:
            s += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sel) + "]"
    return s


def fields_v1(node, field=None):
    out = {}
    keys = list_keys(field, node) if isinstance(node, list) else None
    if isinstance(node, dict):
        for k, v in node.items():
            out["f:" + k] = fields_v1(v, k)
    elif keys:
        for item in node:
            k = "k:" + json.dumps(dict(item_key(item, keys)), separators=(",", ":"))
            out[k] = {".": {}, **fields_v1(item)}
    return out


def apply_config(body):
    """The part of an applied object that managers own: all but apiVersion,
    kind and status, and of metadata only labels and annotations."""
    cfg = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("apiVersion", "kind", "status")}
    meta = {k: v for k, v in (body.get("metadata") or {}).items()
            if k in ("labels", "annotations", "ownerReferences") and v}
    if meta:
        cfg["metadata"] = copy.deepcopy(meta)
    else:
        cfg.pop("metadata", None)
    return cfg


# --------------------------------------------------------------------------
# Selectors

def parse_field_selector(s):
    terms = []
    for t in filter(None, (x.strip() for x in s.split(","))):
        m = re.fullmatch(r"([^=!]+)(==|!=|=)(.*)", t)
        if not m:
            raise bad_request(f'invalid selector: \'{s}\'; can\'t understand \'{t}\'')
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in ("metadata.name", "metadata.namespace"):
            raise bad_request(f"field label not supported: {field}")
        terms.append((field.split(".")[1], op != "!=", value))
    return lambda o: all((o["metadata"].get(f, "") == v) == eq for f, eq, v in terms)


def parse_label_selector(s):
    terms, depth, cur = [], 0, ""
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    preds = []
    for t in (x.strip() for x in terms):
        if not t:
            continue
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", t)
        if m:
            key, op = m.group(1), m.group(2)
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                preds.append(lambda l, k=key, vs=vals: l.get(k) in vs)
            else:
                preds.append(lambda l, k=key, vs=vals: l.get(k) not in vs)
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|!=|=)\s*(\S*)", t)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                preds.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                preds.append(lambda l, k=key, v=val: l.get(k) == v)
            continue
        m = re.fullmatch(r"(!?)\s*([^=!\s()]+)", t)
        if m:
            neg, key = m.groups()
            preds.append(lambda l, k=key, n=bool(neg): (k in l) != n)
            continue
        raise bad_request(f"unable to parse requirement: {t!r}")
    return lambda o: all(p(o["metadata"].get("labels") or {}) for p in preds)


# --------------------------------------------------------------------------
# The store

def pod_template_hash(template):
    """Ten characters from the alphabet Kubernetes uses for pod-template-hash
    (not its exact hash: that one depends on Go's printing of the struct)."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    h = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:4], "big")
    return "".join(alphabet[ord(c) % len(alphabet)] for c in str(h))


def same_value(a, b):
    """Equal as JSON (so 1 and true differ)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def drop_zero(d):
    return {k: v for k, v in d.items() if v not in (0, None)}


class Store:
    """Objects keyed by (groupVersion, plural, namespace or "", name), with a
    history of watch events. All state is guarded by one condition."""

    def __init__(self, namespaces, rollout_seconds):
        self.cond = threading.Condition()
        self.rv = 0
        self.entries = {}     # key -> {"obj": dict, "configs": {manager: {...}}}
        self.events = []      # (rv, type, key, obj)
        self.event_rvs = []   # the rv of each event, for bisect
        self.rollouts = {}    # key -> rollout plan of a Deployment
        self.rollout_seconds = rollout_seconds
        self.trimmed_rv = 0   # events up to this resourceVersion are forgotten
        self.stopping = False
        self.next_ip = 1
        self.kubelet = None   # fake_kubelet.Kubelet with --kubelet
        ns_res = BY_PLURAL[("v1", "namespaces")]
        with self.cond:
            for ns in namespaces:
                self._commit(("v1", "namespaces", "", ns), self._build(
                    ns_res, "", ns, {}, None, now_rfc3339()), "ADDED")

    # -- helpers (caller holds self.cond)

    def _bump(self):
        self.rv += 1
        return str(self.rv)

    def _emit(self, etype, key, obj):
        self.events.append((self.rv, etype, key, copy.deepcopy(obj)))
        self.event_rvs.append(self.rv)
        if len(self.events) > HISTORY:
            drop = len(self.events) - HISTORY
            self.trimmed_rv = self.event_rvs[drop - 1]
            del self.events[:drop]
            del self.event_rvs[:drop]
        self.cond.notify_all()

    def _commit(self, key, entry, etype):
        entry["obj"]["metadata"]["resourceVersion"] = self._bump()
        self.entries[key] = entry
        self._emit(etype, key, entry["obj"])

    def namespace_exists(self, ns):
        return ("v1", "namespaces", "", ns) in self.entries

    def _build(self, res, ns, name, configs, prev, now):
        """The object that configs (manager -> record, in apply order) make,
        given the previous object (or None)."""
        content = {}
        for rec in configs.values():
            content = merge(content, rec["config"])
        cmeta = content.pop("metadata", {}) or {}
        pmeta = prev["metadata"] if prev else {}
        meta = {"name": name}
        if res.namespaced:
            meta["namespace"] = ns
        meta["uid"] = pmeta.get("uid") or str(uuid.uuid4())
        meta["resourceVersion"] = pmeta.get("resourceVersion", "")
        meta["generation"] = pmeta.get("generation", 1)
        meta["creationTimestamp"] = pmeta.get("creationTimestamp") or now
        labels = dict(cmeta.get("labels") or {})
        if res.kind == "Namespace":
            labels["kubernetes.io/metadata.name"] = name
        if labels:
            meta["labels"] = labels
        if cmeta.get("annotations"):
            meta["annotations"] = cmeta["annotations"]
        if cmeta.get("ownerReferences"):
            meta["ownerReferences"] = cmeta["ownerReferences"]
        obj = {"apiVersion": res.gv, "kind": res.kind, "metadata": meta}
        obj.update(content)
        self._defaults(res, obj, prev)
        if prev is not None:
            def body(o):
                return {k: v for k, v in o.items() if k not in ("apiVersion", "kind", "metadata", "status")}
            if body(obj) != body(prev):
                meta["generation"] = pmeta.get("generation", 1) + 1
        managed = [{"manager": m, "operation": "Apply", "apiVersion": rec["apiVersion"], "time": rec["time"],
                    "fieldsType": "FieldsV1", "fieldsV1": fields_v1(rec["config"])}
                   for m, rec in configs.items()]
        controller = next((e for e in pmeta.get("managedFields", []) if e.get("subresource") == "status"), None)
        if controller:
            managed.append(controller)
        meta["managedFields"] = managed
        if prev is not None and "status" in prev:
            obj["status"] = copy.deepcopy(prev["status"])
        elif res.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Ingress"):
            obj["status"] = {}
        elif res.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif res.kind == "Service":
            obj["status"] = {"loadBalancer": {}}
        elif res.kind == "Pod":
            obj["status"] = {"phase": "Pending"}
        elif res.kind == "PersistentVolumeClaim":
            # Bound at once, as with a provisioner that binds immediately.
            spec = obj.get("spec") or {}
            obj["status"] = {"phase": "Bound", "accessModes": spec.get("accessModes") or [],
                             "capacity": ((spec.get("resources") or {}).get("requests") or {})}
        return {"obj": obj, "configs": configs}

    def _defaults(self, res, obj, prev):
        if res.kind == "Deployment":
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("strategy", {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        elif res.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") in (None, "") and spec["type"] != "ExternalName":
                old = (prev or {}).get("spec", {}).get("clusterIP")
                if not old:
                    old = f"10.96.{self.next_ip // 250}.{self.next_ip % 250 + 1}"
                    self.next_ip += 1
                spec["clusterIP"] = old
                spec["clusterIPs"] = [old]
            spec.setdefault("sessionAffinity", "None")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    if "port" in p:
                        p.setdefault("targetPort", p["port"])
        elif res.kind == "Secret":
            obj.setdefault("type", "Opaque")
            sd = obj.pop("stringData", None)
            if isinstance(sd, dict):
                data = obj.setdefault("data", {})
                for k, v in sd.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
        elif res.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})

    # -- requests

    def get(self, res, ns, name):
        with self.cond:
            e = self.entries.get((res.gv, res.plural, ns if res.namespaced else "", name))
            if not e:
                raise not_found(res, name)
            return copy.deepcopy(e["obj"])

    def list(self, res, ns, match):
        with self.cond:
            items = [copy.deepcopy(e["obj"]) for k, e in sorted(self.entries.items())
                     if k[0] == res.gv and k[1] == res.plural and (ns is None or k[2] == ns)
                     and match(e["obj"])]
            rv = str(self.rv)
        for o in items:
            o.pop("apiVersion", None)
            o.pop("kind", None)
        return {"kind": res.kind + "List", "apiVersion": res.gv, "metadata": {"resourceVersion": rv},
                "items": items}

    def apply(self, res, ns, name, body, manager, force, dry_run):
        """Server-side apply; returns (http status, object)."""
        if not isinstance(body, dict):
            raise bad_request("error decoding YAML: the object provided is not a map")
        api_version = str(body.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        if api_version != res.gv or body.get("kind") != res.kind:
            raise bad_request(f"invalid object type: {group}/{version}, Kind={body.get('kind') or ''}")
        meta = body.get("metadata") or {}
        if not isinstance(meta, dict):
            raise bad_request("error decoding YAML: metadata is not a map")
        if meta.get("managedFields") is not None:
            raise bad_request("metadata.managedFields must be nil")
        if res.kind == "ConfigMap":
            check_configmap(body, name)
        key = (res.gv, res.plural, ns if res.namespaced else "", name)
        config = apply_config(body)
        now = now_rfc3339()
        with self.cond:
            prev = self.entries.get(key)
            configs = copy.deepcopy(prev["configs"]) if prev else {}
            if prev:
                live = prev["obj"]
                conflicts = []
                for other, rec in configs.items():
                    if other == manager:
                        continue
                    theirs = leaves(rec["config"])
                    for path, value in leaves(config).items():
                        cur = lookup(live, path)
                        if path in theirs and cur is not MISSING and not same_value(cur, value):
                            conflicts.append((other, path))
                if conflicts and not force:
                    raise conflict_error(conflicts)
                for other, path in conflicts:
                    remove_path(configs[other]["config"], path)
                    if not configs[other]["config"]:
                        del configs[other]
            old_rec = configs.get(manager)
            if not (old_rec and same_value(old_rec["config"], config)):
                # A changed configuration is the newest: it wins where it overlaps.
                configs.pop(manager, None)
                configs[manager] = {"config": config, "apiVersion": res.gv, "time": now}
            if res.namespaced and meta.get("namespace") not in (None, "", ns):
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            obj_name = meta.get("name") or (name if prev else "")
            if obj_name != name:
                raise bad_request(f"the name of the object ({obj_name}) does not match the name on the URL ({name})")
            if res.namespaced and not self.namespace_exists(ns):
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
            entry = self._build(res, ns, name, configs, prev["obj"] if prev else None, now)
            if prev and same_value(entry["obj"], prev["obj"]):
                return 200, copy.deepcopy(prev["obj"])
            if dry_run:
                return (200 if prev else 201), copy.deepcopy(entry["obj"])
            self._commit(key, entry, "MODIFIED" if prev else "ADDED")
            if self._orphaned(entry["obj"]):
                # Its owner is gone: the garbage collector removes it.
                self._gc_delete(key)
                return (200 if prev else 201), copy.deepcopy(entry["obj"])
            if res.kind == "Pod" and not prev and self.kubelet:
                self.kubelet.pod_created(key)
            if res.kind == "Deployment":
                gen = entry["obj"]["metadata"]["generation"]
                if not prev or gen != prev["obj"]["metadata"]["generation"]:
                    self._plan_rollout(key, entry["obj"], prev is None)
            return (200 if prev else 201), copy.deepcopy(entry["obj"])

    def create(self, res, ns, body, manager):
        """POST: 201 with the object, 409 AlreadyExists when it is there."""
        if not isinstance(body, dict):
            raise bad_request("the object provided is not a map")
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{res.kind} \"\" is invalid: metadata.name: Required value: "
                           "name or generateName is required", details("", res))
        with self.cond:
            if (res.gv, res.plural, ns if res.namespaced else "", name) in self.entries:
                raise ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists',
                               details(name, res))
            return self.apply(res, ns, name, body, manager, False, False)

    def delete(self, res, ns, name, dry_run, grace=None):
        key = (res.gv, res.plural, ns if res.namespaced else "", name)
        with self.cond:
            e = self.entries.get(key)
            if not e:
                raise not_found(res, name)
            uid = e["obj"]["metadata"]["uid"]
            if res.kind == "Pod" and self.kubelet and not dry_run:
                obj = e["obj"]
                if grace is None:
                    grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                if grace > 0 and self.kubelet.graceful(key):
                    # The kubelet stops the container, then the object goes.
                    if "deletionTimestamp" not in obj["metadata"]:
                        obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                        obj["metadata"]["deletionGracePeriodSeconds"] = grace
                        self._commit(key, e, "MODIFIED")
                        self.kubelet.stop(key, grace)
                    return copy.deepcopy(obj)
                self.kubelet.forget(key)
            if not dry_run:
                doomed = [key]
                if res.kind == "Namespace":
                    doomed += [k for k in sorted(self.entries) if k[2] == name and k[1] != "namespaces"]
                for k in reversed(doomed):
                    gone = self.entries.pop(k)
                    self.rollouts.pop(k, None)
                    gone["obj"]["metadata"]["resourceVersion"] = self._bump()
                    self._emit("DELETED", k, gone["obj"])
                    self._collect_garbage(gone["obj"]["metadata"]["uid"])
                if res.kind == "Node" and self.kubelet:
                    self.kubelet.node_deleted(name)
        d = details(name, res)
        d["uid"] = uid
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d}

    # -- garbage collection (ownerReferences), a small model of the
    # controller's background cascade: when an object goes, every object
    # that names its uid in metadata.ownerReferences is deleted as if by a
    # client (Pods with their grace period), at once rather than in the
    # collector's own time; an object created with an ownerReference to a
    # uid that does not exist is deleted right after its creation. No
    # foreground deletion, no orphan propagation, no blockOwnerDeletion.
    # Caller holds self.cond (an RLock: delete() may come back in).

    def _live_uids(self):
        return {e["obj"]["metadata"]["uid"] for e in self.entries.values()}

    def _orphaned(self, obj):
        refs = obj["metadata"].get("ownerReferences") or []
        if not refs:
            return False
        live = self._live_uids()
        return all(r.get("uid") not in live for r in refs if isinstance(r, dict))

    def _gc_delete(self, key):
        gv, plural, ns, name = key
        res = BY_PLURAL.get((gv, plural))
        if res is None or key not in self.entries:
            return
        try:
            self.delete(res, ns, name, False)
        except ApiError:
            pass

    def _collect_garbage(self, uid):
        for key, e in sorted(self.entries.items()):
            refs = e["obj"]["metadata"].get("ownerReferences") or []
            if any(isinstance(r, dict) and r.get("uid") == uid for r in refs) and self._orphaned(e["obj"]):
                self._gc_delete(key)

    # -- watch

    def snapshot(self, res, ns, match):
        """(current objects as ADDED events, resourceVersion) for a new watch."""
        with self.cond:
            evs = [("ADDED", copy.deepcopy(e["obj"])) for k, e in sorted(self.entries.items())
                   if k[0] == res.gv and k[1] == res.plural and (ns is None or k[2] == ns)
                   and match(e["obj"])]
            return evs, self.rv

    def too_old(self, rv):
        with self.cond:
            return rv < self.trimmed_rv

    def wait_events(self, res, ns, match, after, timeout):
        """Events newer than resourceVersion after that match; waits up to
        timeout for one. Returns (events, newest resourceVersion seen)."""
        with self.cond:
            def pending():
                i = bisect.bisect_right(self.event_rvs, after)
                return self.events[i:]
            if not pending() and not self.stopping:
                self.cond.wait(timeout)
            out, last = [], after
            for rv, etype, key, obj in pending():
                last = rv
                if key[0] == res.gv and key[1] == res.plural and (ns is None or key[2] == ns) and match(obj):
                    out.append((etype, obj))
            return out, last

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    # -- Deployment rollout simulation

    def _plan_rollout(self, key, obj, first):
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        containers = ((template.get("spec") or {}).get("containers") or [])
        images = [str(c.get("image", "")) for c in containers if isinstance(c, dict)]
        st = obj.get("status") or {}
        replicas = spec.get("replicas", 1)
        self.rollouts[key] = {
            "t0": time.monotonic(), "gen": obj["metadata"]["generation"],
            "replicas": replicas if isinstance(replicas, int) and replicas >= 0 else 1,
            "old": 0 if first else st.get("availableReplicas", 0),
            "fail": any("fail-rollout" in i for i in images), "first": first,
            "rs": f'{key[3]}-{pod_template_hash(template)}',
        }

    def _rollout_status(self, plan, elapsed, prev):
        R = self.rollout_seconds
        if elapsed < 0.1 * R:
            return None, False
        n, done = plan["replicas"], elapsed >= R
        steps = max(1, min(n, 3))
        stage = steps if done else min(steps - 1, int((elapsed - 0.1 * R) / (0.9 * R) * steps))
        updated = n if done else math.ceil(n * stage / steps)
        if plan["fail"]:
            new_avail, old = 0, plan["old"]
        else:
            new_avail = n if done else (math.ceil(n * (stage - 1) / steps) if stage else 0)
            old = min(plan["old"], max(0, n - new_avail))
        avail = new_avail + old
        st = drop_zero({"observedGeneration": plan["gen"], "replicas": updated + old,
                        "updatedReplicas": updated, "readyReplicas": avail, "availableReplicas": avail,
                        "unavailableReplicas": max(0, n - avail)})
        rs = plan["rs"]
        if avail >= n - n // 4:
            available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            available = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        if done and plan["fail"]:
            progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs}" has timed out progressing.')
        elif done:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs}" has successfully progressed.')
        elif plan["first"] and stage == 0:
            progressing = ("True", "NewReplicaSetCreated", f'Created new replica set "{rs}"')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs}" is progressing.')
        old_conds = {c.get("type"): c for c in (prev or {}).get("conditions", []) if isinstance(c, dict)}
        now, conds = now_rfc3339(), []
        for ctype, (status, reason, message) in (("Available", available), ("Progressing", progressing)):
            o = old_conds.get(ctype, {})
            same = o.get("status") == status and o.get("reason") == reason and o.get("message") == message
            conds.append({"type": ctype, "status": status,
                          "lastUpdateTime": o["lastUpdateTime"] if same else now,
                          "lastTransitionTime": o["lastTransitionTime"] if o.get("status") == status else now,
                          "reason": reason, "message": message})
        st["conditions"] = conds
        return st, done

    def tick(self):
        with self.cond:
            for key, plan in list(self.rollouts.items()):
                e = self.entries.get(key)
                if not e:
                    del self.rollouts[key]
                    continue
                status, done = self._rollout_status(plan, time.monotonic() - plan["t0"], e["obj"].get("status"))
                if done:
                    del self.rollouts[key]
                if status is None or status == e["obj"].get("status"):
                    continue
                obj = e["obj"]
                obj["status"] = status
                mf = [m for m in obj["metadata"]["managedFields"] if m.get("subresource") != "status"]
                mf.append({"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                           "time": now_rfc3339(), "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:status": fields_v1(status)}, "subresource": "status"})
                obj["metadata"]["managedFields"] = mf
                self._commit(key, e, "MODIFIED")


CONFIGMAP_MAX = 1048576  # core.MaxSecretSize, which ConfigMaps share


def check_configmap(body, name):
    """What the real validation refuses: binaryData that is not base64
    (the decoder's 400) and more than 1 MiB of data and binaryData together
    (binaryData counted decoded: 422 Invalid, the real wording)."""
    total = 0
    for k, v in (body.get("data") or {}).items():
        total += len(str(v).encode())
    for k, v in (body.get("binaryData") or {}).items():
        try:
            total += len(base64.b64decode(str(v), validate=True))
        except ValueError:
            raise bad_request(f"ConfigMap in version \"v1\" cannot be handled as a ConfigMap: illegal base64 data "
                              f"in binaryData[{k}]")
        if k in (body.get("data") or {}):
            raise ApiError(422, "Invalid", f'ConfigMap "{name}" is invalid: binaryData[{k}]: Invalid value: '
                           f'"{k}": duplicate of key present in data', details(name, BY_PLURAL[("v1", "configmaps")]))
    if total > CONFIGMAP_MAX:
        why = f"Too long: must have at most {CONFIGMAP_MAX} bytes"
        raise ApiError(422, "Invalid", f'ConfigMap "{name}" is invalid: []: {why}',
                       {"name": name, "kind": "ConfigMap",
                        "causes": [{"reason": "FieldValueTooLong", "message": why, "field": "[]"}]})


def conflict_error(conflicts):
    def manager(m):
        return json.dumps(m)
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {manager(m)}", "field": path_string(p)}
              for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {manager(m)}: {path_string(p)}"
    else:
        lines = []
        for m in sorted({m for m, _ in conflicts}):
            lines.append(f"conflicts with {manager(m)}:")
            lines += [f"- {path_string(p)}" for mm, p in conflicts if mm == m]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


# --------------------------------------------------------------------------
# HTTP

def discovery_documents(port):
    docs = {
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}]},
        "/version": SERVER_VERSION,
    }
    groups = []
    for gv in GROUP_VERSIONS:
        res = [r.discovery() for r in RESOURCES if r.gv == gv]
        res += [{"name": f"{p}/{s}", "singularName": "", "namespaced": True,
                 "kind": BY_PLURAL[(g, p)].kind, "verbs": ["get"]}
                for g, p, s in sorted(SUBRESOURCES) if g == gv]
        path = "/api/v1" if gv == "v1" else "/apis/" + gv
        docs[path] = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}
        if gv != "v1":
            group = {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": "v1"}],
                     "preferredVersion": {"groupVersion": gv, "version": "v1"}}
            groups.append(group)
            docs["/apis/" + group["name"]] = dict(kind="APIGroup", apiVersion="v1", **group)
    docs["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    return docs


class Handler(fakelib.LoggingHandler):
    server_version = "kiln-fake-k8s"

    def _send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        self._logged = False
        self._log_body = None
        try:
            self._raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._raw = b""
        if self._raw:
            try:
                self._log_body = decode_body(self._raw)
            except (ValueError, UnicodeDecodeError):
                self._log_body = None
        try:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if self._raw and ctype in ("application/vnd.kubernetes.protobuf", "application/cbor"):
                # not spoken here: a 415, on which client-go sends JSON again
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json, application/yaml, "
                               "application/apply-patch+yaml")
            self._route()
        except ApiError as e:
            self._send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake: say so as the real server would
            traceback.print_exc()
            self._send_json(500, ApiError(500, "InternalError", f"Internal error occurred: {e}", {}).status())
        finally:
            if not self._logged:
                self._log(None)

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = do_OPTIONS = _handle

    def _route(self):
        cfg = self.server.cfg
        if cfg.token is not None or cfg.client_ca or cfg.token_file:
            auth = self.headers.get("Authorization") or ""
            by_token = cfg.token is not None and hmac.compare_digest(auth.encode(), f"Bearer {cfg.token}".encode())
            by_token = by_token or token_file_accepts(cfg.token_file, auth)
            # The handshake verified it against --client-ca (a certificate of
            # another CA does not get this far: the handshake fails).
            by_cert = bool(cfg.client_ca) and bool(fakelib.client_cn(self.connection))
            if not (by_token or by_cert):
                raise ApiError(401, "Unauthorized", "Unauthorized")
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        path = "/" + "/".join(p for p in u.path.split("/") if p)
        if path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        doc = cfg.docs.get(path)
        if doc is not None:
            if self.command != "GET":
                raise method_not_allowed()
            return self._send_json(200, doc)
        parts = path.split("/")[1:]
        if parts[:2] == ["api", "v1"]:
            gv, rest = "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            raise path_not_found()
        if len(rest) >= 3 and rest[0] == "namespaces" and getattr(BY_PLURAL.get((gv, rest[2])), "namespaced", False):
            ns, rest = rest[1], rest[2:]
        else:
            ns = None
        res = BY_PLURAL.get((gv, rest[0])) if rest else None
        if res is None or len(rest) > 3:
            raise path_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if res.namespaced and name is not None and ns is None:
            raise path_not_found()
        if sub is not None and (gv, res.plural, sub) not in SUBRESOURCES:
            raise path_not_found()
        store = cfg.store
        if name is None and self.command == "POST" and ns is not None:
            body = decode_body(self._raw) if self._raw else None
            code, obj = store.create(res, ns, body, q.get("fieldManager") or "kubectl-create")
            return self._send_json(code, obj)
        if name is None:
            if self.command != "GET":
                raise method_not_allowed()
            match = self._matcher(q)
            if q.get("watch") in ("true", "1"):
                return self._watch(res, ns, q, match)
            return self._send_json(200, store.list(res, ns, match))
        if sub == "log":
            if self.command != "GET":
                raise method_not_allowed()
            return self._pod_log(ns, name, q)
        if sub is not None:
            if self.command != "GET":
                raise method_not_allowed()
            return self._send_json(200, store.get(res, ns, name))
        if self.command == "GET":
            return self._send_json(200, store.get(res, ns, name))
        if self.command == "DELETE":
            grace = q.get("gracePeriodSeconds")
            if grace is None and self._raw:
                try:
                    grace = (decode_body(self._raw) or {}).get("gracePeriodSeconds")
                except (ValueError, UnicodeDecodeError, AttributeError):
                    grace = None
            try:
                grace = int(grace) if grace is not None else None
            except ValueError:
                raise bad_request(f'invalid gracePeriodSeconds "{grace}"')
            return self._send_json(200, store.delete(res, ns, name, q.get("dryRun") == "All", grace))
        if self.command == "PATCH":
            return self._apply(res, ns, name, q)
        raise method_not_allowed()

    def _pod_log(self, ns, name, q):
        """pods/log from the kubelet's CRI log file: follow, timestamps,
        sinceTime; the container's stdout and stderr merged, as a real
        server sends them."""
        store = self.server.cfg.store
        pod = store.get(BY_PLURAL[("v1", "pods")], ns, name)
        kubelet = store.kubelet
        key = ("v1", "pods", ns, name)
        path, done = kubelet.log_state(key) if kubelet else (None, True)
        ctr = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "")
        want = q.get("container") or ctr
        if want != ctr:
            raise bad_request(f"container {want} is not valid for pod {name}")
        if not path:
            waiting = (((pod.get("status") or {}).get("containerStatuses") or [{}])[0].get("state") or {}).get(
                "waiting") or {}
            raise bad_request(f'container "{ctr}" in pod "{name}" is waiting to start: '
                              f'{waiting.get("reason", "ContainerCreating")}')
        follow = q.get("follow") in ("true", "1")
        stamps = q.get("timestamps") in ("true", "1")
        since = q.get("sinceTime") or ""

        def ts_key(t):
            """RFC 3339 with or without a fraction, comparable."""
            t = t.rstrip("Z")
            sec, _, frac = t.partition(".")
            return sec, (frac + "000000000")[:9]
        since_key = ts_key(since) if since else None

        def render(raw):
            out = []
            for rec in raw.split(b"\n"):
                parts = rec.split(b" ", 3)
                if len(parts) < 4:
                    continue
                ts, _stream, tag, text = parts
                if since_key and ts_key(ts.decode()) < since_key:
                    continue
                out.append((ts + b" " if stamps else b"") + text + (b"\n" if tag == b"F" else b""))
            return b"".join(out)

        if not follow:
            with open(path, "rb") as f:
                data = render(f.read())
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pending, sent = b"", 0
        brk = self.server.cfg.log_break
        try:
            f = open(path, "rb")
            try:
                while not store.stopping:
                    chunk = f.read(65536)
                    if chunk:
                        pending += chunk
                        cut = pending.rfind(b"\n")
                        if cut >= 0:
                            data = render(pending[:cut])
                            pending = pending[cut + 1:]
                            if data:
                                t0 = time.monotonic()
                                self._chunk(data)
                                note_stall(name, time.monotonic() - t0)
                                sent += len(data)
                                if brk and sent >= brk:
                                    # --log-break-every: the stream breaks
                                    # as at an API server restart.
                                    self.close_connection = True
                                    self.connection.shutdown(socket.SHUT_RDWR)
                                    return
                        continue
                    newer = log_rotated(path, f)
                    if newer:
                        f.close()
                        f = newer
                        continue
                    _, done = kubelet.log_state(key)
                    if done:
                        # Read what came between the last read and the end.
                        rest = f.read()
                        if rest:
                            pending += rest
                            continue
                        break
                    if self._client_gone():
                        return
                    time.sleep(0.05)
            finally:
                f.close()
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _matcher(self, q):
        fs = parse_field_selector(q.get("fieldSelector", ""))
        ls = parse_label_selector(q.get("labelSelector", ""))
        return lambda o: fs(o) and ls(o)

    def _apply(self, res, ns, name, q):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/apply-patch+yaml":
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           "application/apply-patch+yaml")
        manager = q.get("fieldManager", "")
        if not manager:
            raise ApiError(422, "Invalid",
                           'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                           "is required for apply patch",
                           {"group": "meta.k8s.io", "kind": "PatchOptions",
                            "causes": [{"reason": "FieldValueRequired",
                                        "message": "Required value: is required for apply patch",
                                        "field": "fieldManager"}]})
        force = q.get("force", "false")
        if force not in ("true", "false", "1", "0", "True", "False"):
            raise bad_request(f'strconv.ParseBool: parsing "{force}": invalid syntax')
        try:
            body = decode_body(self._raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request(f"error decoding YAML: {e}")
        code, obj = self.server.cfg.store.apply(res, ns, name, body, manager, force in ("true", "1", "True"),
                                                q.get("dryRun") == "All")
        self._send_json(code, obj)

    def _client_gone(self):
        """A watching client sends nothing more: a readable socket means it
        closed (TLS cannot peek, so there readable is taken as closed)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            if isinstance(self.connection, ssl.SSLSocket):
                return True
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, res, ns, q, match):
        store = self.server.cfg.store
        rv_param = q.get("resourceVersion", "")
        try:
            since = int(rv_param) if rv_param not in ("", "0") else None
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            raise bad_request(f'invalid resource version: "{rv_param}"')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout

        def send(etype, obj):
            self._chunk((json.dumps({"type": etype, "object": obj}) + "\n").encode())

        try:
            if since is None:
                initial, since = store.snapshot(res, ns, match)
                for etype, obj in initial:
                    send(etype, obj)
            elif store.too_old(since):
                send("ERROR", ApiError(410, "Expired", f"too old resource version: {since} ({store.rv})").status())
                deadline = 0
            while not store.stopping:
                left = deadline - time.monotonic()
                if left <= 0 or self._client_gone():
                    break
                events, since = store.wait_events(res, ns, match, since, min(1.0, left))
                for etype, obj in events:
                    send(etype, obj)
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


def token_file_accepts(path, auth):
    """--token-file: is AUTH "Bearer T" for a token T listed there (lines
    "TOKEN [END]", END in Unix seconds) whose END has not passed? Read at
    each request: a test's credential plugin adds the tokens it hands out."""
    if not path or not auth.startswith("Bearer "):
        return False
    import time  # here: this file's imports are shared with other changes
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return False
    for line in lines:
        parts = line.split()
        if parts and hmac.compare_digest(auth.encode(), f"Bearer {parts[0]}".encode()):
            return len(parts) < 2 or time.time() < float(parts[1])
    return False


def note_stall(pod, seconds):
    """A follow's write that waited on the client (it stopped reading:
    backpressure) is said on stderr, for tests to see."""
    if seconds >= 0.5:
        print(f"pods/log stalled {seconds:.1f}s on {pod}: the client was not reading", file=sys.stderr,
              flush=True)


def log_rotated(path, f):
    """F (read to its end) was rotated away from PATH: the new PATH, open,
    as the kubelet's follow goes on in the new file; else None."""
    import os  # here: this file's imports are shared with other changes
    try:
        if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
            return None
        rest = f.read()  # written to the old file after the last read
        if rest:
            f.seek(-len(rest), os.SEEK_CUR)
            return None
        return open(path, "rb")
    except OSError:
        return None


def main(argv=None):
    ap = fakelib.arg_parser("A fake Kubernetes API server for tests (see the header).")
    ap.add_argument("--namespaces", default="default,kube-system,kube-public",
                    help="namespaces that exist from the start (comma-separated)")
    ap.add_argument("--rollout-seconds", type=float, default=1.0,
                    help="how long a simulated Deployment rollout takes")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (with --tls-key)")
    ap.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    ap.add_argument("--client-ca", help="with --tls-cert: accept client certificates signed by this CA (PEM) "
                                        "as users, besides --token")
    ap.add_argument("--token-file", help="also accept the bearer tokens listed in this file, one a line, each "
                                         "with an optional end (Unix seconds) after which it gets 401; read at "
                                         "each request")
    ap.add_argument("--kubelet", metavar="PODMAN",
                    help="run Pods' containers with this podman command (e.g. 'podman'); see fake_kubelet.py")
    ap.add_argument("--kubelet-dir", help="with --kubelet: where logs, claims and emptyDirs live")
    ap.add_argument("--log-break-every", type=int, default=0, metavar="BYTES",
                    help="break every followed pods/log stream after about BYTES (a dropped connection)")
    ap.add_argument("--log-rotate-bytes", type=int, default=0, metavar="BYTES",
                    help="with --kubelet: rotate a container's log file past BYTES (the kubelet's 10 MiB)")
    args = ap.parse_args(argv)
    if args.rollout_seconds <= 0:
        ap.error("--rollout-seconds must be positive")
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        ap.error("--client-ca needs --tls-cert and --tls-key")

    store = Store([n.strip() for n in args.namespaces.split(",") if n.strip()], args.rollout_seconds)
    if args.kubelet:
        import fake_kubelet
        fake_kubelet.BY_PLURAL = BY_PLURAL
        store.kubelet = fake_kubelet.Kubelet(store, args.kubelet, args.kubelet_dir or "kubelet",
                                             args.log_rotate_bytes)
        store.kubelet.register_node()
    server = fakelib.make_server(args, Handler, store)
    server.cfg.client_ca = args.client_ca
    server.cfg.token_file = args.token_file
    if args.tls_cert:
        # The handshake happens in the handler's thread, on the first read.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            # As kube-apiserver's --client-ca-file: a certificate is asked
            # for, verified when given, and then it is the user.
            tls.verify_mode = ssl.CERT_OPTIONAL
            tls.load_verify_locations(args.client_ca)
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.cfg.docs = discovery_documents(server.server_address[1])
    server.cfg.log_break = args.log_break_every

    stop = threading.Event()

    def rollouts():
        while not stop.is_set():
            store.tick()
            stop.wait(0.05)
    threading.Thread(target=rollouts, name="rollouts", daemon=True).start()
    return fakelib.serve(server, args.port_file, stop, before_shutdown=store.stop)


if __name__ == "__main__":
    sys.exit(main())
