# SPDX-License-Identifier: MIT
"""Drives the fake Cloud Run Admin API (fake_cloudrun.py) with the Cloud Run
v2 client that the Google Cloud SDK bundles (the generated GAPIC Python code
of google-cloud-run, googlecloudsdk.generated_clients.gapic_clients.run_v2,
with its REST transport and google-api-core's operations), and writes what
the client returned, step by step, as one JSON object. It asserts nothing
itself: tests/integration/test_fake_cloudrun.sh checks the file.

Usage: PYTHON cloudrun_gapic_check.py SDK_ROOT PORT TOKEN PROJECT LOCATION OUT
  PYTHON    the interpreter gcloud runs with (gcloud info: basic.python_location)
  SDK_ROOT  gcloud info: installation.sdk_root
Exits 0 when every step ran (a step that raises records the error), 1 when
the client could not be loaded, 2 on a usage error.
"""
import json
import sys
import time

if len(sys.argv) != 7:
    print(__doc__.strip().splitlines()[-5], file=sys.stderr)
    sys.exit(2)
sdk, port, token, project, location, out = sys.argv[1:]
sys.path[:0] = [f"{sdk}/lib", f"{sdk}/lib/third_party"]
from google.api_core import exceptions  # noqa: E402
from google.api_core.client_options import ClientOptions  # noqa: E402
from google.oauth2.credentials import Credentials  # noqa: E402
from googlecloudsdk.generated_clients.gapic_clients.run_v2 import types  # noqa: E402
from googlecloudsdk.generated_clients.gapic_clients.run_v2.services.services.client import (  # noqa: E402
    ServicesClient,
)
from google.iam.v1 import iam_policy_pb2, policy_pb2  # noqa: E402


def client(tok):
    """A static access token (no refresh), the REST transport, plain HTTP."""
    return ServicesClient(credentials=Credentials(token=tok), transport="rest",
                          client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{port}"))


results = {"client": {"module": ServicesClient.__module__, "python": sys.version.split()[0]}}


def step(name, fn):
    t0 = time.monotonic()
    try:
        results[name] = fn()
    except exceptions.GoogleAPICallError as e:
        results[name] = {"error": {"type": type(e).__name__, "code": e.code,
                                   "grpc": e.grpc_status_code.name if e.grpc_status_code else None,
                                   "message": e.message}}
    except Exception as e:  # the client failed in a way it should not: record it
        results[name] = {"exception": f"{type(e).__name__}: {e}"}
    results[name]["ms"] = int((time.monotonic() - t0) * 1000)


def ename(v):
    """An enum's name; google.api.LaunchStage comes back as a plain int."""
    return getattr(v, "name", v)


def facts(s):
    c = s.template.containers[0] if s.template.containers else None
    return {"name": s.name, "generation": s.generation, "observedGeneration": s.observed_generation,
            "uri": s.uri, "reconciling": s.reconciling, "image": c.image if c else None,
            "containerPort": c.ports[0].container_port if c and c.ports else None,
            "ingress": ename(s.ingress), "launchStage": ename(s.launch_stage),
            "terminalState": ename(s.terminal_condition.state), "terminalMessage": s.terminal_condition.message,
            "latestReadyRevision": s.latest_ready_revision, "latestCreatedRevision": s.latest_created_revision,
            "traffic": [f"{ename(t.type_)}:{t.percent}" for t in s.traffic], "etag": s.etag}


c = client(token)
parent = f"projects/{project}/locations/{location}"
image = f"us-docker.pkg.dev/{project}/apps/gapic:1"
state = {}


def create():
    op = c.create_service(parent=parent, service_id="gapic", service=types.Service(
        labels={"app": "gapic"}, template=types.RevisionTemplate(containers=[types.Container(image=image)])))
    started = {"opName": op.operation.name, "doneAtStart": op.operation.done}
    svc = op.result(timeout=120)
    state["svc"] = svc
    return dict(started, result=facts(svc))


def update():
    svc = types.Service.copy(state["svc"]) if hasattr(types.Service, "copy") else state["svc"]
    svc.template.containers[0].image = image.replace(":1", ":2")
    op = c.update_service(service=svc)
    after = op.result(timeout=120)
    state["svc"] = after
    return {"result": facts(after)}


def stale():
    svc = types.Service(name=f"{parent}/services/gapic", etag='"stale/etag"',
                        template=types.RevisionTemplate(containers=[types.Container(image=image)]))
    return {"opName": c.update_service(service=svc).operation.name}


def failing():
    svc = types.Service(name=f"{parent}/services/gapic", template=types.RevisionTemplate(
        containers=[types.Container(image=f"us-docker.pkg.dev/{project}/apps/fail-deploy:3")]))
    return {"result": facts(c.update_service(service=svc).result(timeout=120))}


def set_policy():
    p = c.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(
        resource=f"{parent}/services/gapic",
        policy=policy_pb2.Policy(bindings=[policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"])])))
    return {"version": p.version, "bindings": [[b.role, list(b.members)] for b in p.bindings]}


def delete():
    svc = c.delete_service(name=f"{parent}/services/gapic").result(timeout=120)
    return {"result": facts(svc)}


step("create", create)
step("createAgain", lambda: {"opName": c.create_service(
    parent=parent, service_id="gapic",
    service=types.Service(template=types.RevisionTemplate(containers=[types.Container(image=image)]))).operation.name})
step("get", lambda: facts(c.get_service(name=f"{parent}/services/gapic")))
step("getMissing", lambda: facts(c.get_service(name=f"{parent}/services/nope")))
step("update", update)
step("updateStaleEtag", stale)
step("failingDeploy", failing)
step("afterFailure", lambda: facts(c.get_service(name=f"{parent}/services/gapic")))
step("list", lambda: {"names": [s.name for s in c.list_services(parent=parent)]})
step("getIamPolicy", lambda: (lambda p: {"etag": __import__("base64").b64encode(p.etag).decode(),
                                         "bindings": len(p.bindings)})(
    c.get_iam_policy(request=iam_policy_pb2.GetIamPolicyRequest(resource=f"{parent}/services/gapic"))))
step("setIamPolicy", set_policy)
step("delete", delete)
step("wrongToken", lambda: facts(client("not-" + token).get_service(name=f"{parent}/services/gapic")))

with open(out, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1)
    f.write("\n")
