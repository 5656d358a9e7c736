#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Google Cloud Logging API (entries:write) for kiln's tests, with
injectable faults (logrecv.py).

  python3 fake_cloudlogging.py --port-file FILE [--port 0] [--log FILE]
                               [--token T] [--jwt-pubkey PEM]

  POST /v2/entries:write  WriteLogEntriesRequest as JSON -> 200 {}.
      Checked as the API does: entries[] required; logName
      "projects/P/logs/ID" (per request or per entry); each entry has exactly
      one of textPayload/jsonPayload/protoPayload, a severity of the LogSeverity
      names (or their numbers, as the protobuf JSON mapping allows), an RFC 3339 timestamp, string labels; at most 1000 entries and
      10 MB. Errors are Google's {"error": {"code", "message", "status"}}.
      Without a valid "Authorization: Bearer" (--token, or one this fake
      issued): 401 UNAUTHENTICATED.
      Cloud Logging drops an entry whose insertId (and timestamp) it has
      seen: records are deduplicated by insertId.
  POST /token  the OAuth token endpoint of a service-account key file: a
      jwt-bearer grant whose RS256 signature is checked against --jwt-pubkey
      (with `openssl dgst`) and whose claims need iss, aud, scope, iat, exp;
      answers {"access_token": "issued-N", "expires_in": 3600, ...}.
  GET /computeMetadata/v1/instance/service-accounts/default/token  the
      metadata server (needs "Metadata-Flavor: Google"); issues a token too.

Each record kept: {"key" (insertId), "run_id" (resource label build_id),
"project", "log_name", "resource_type", "step", "stream", "seq", "severity",
"timestamp", "body" (textPayload), "partial", "split"}. Checked by Google's
@google-cloud/logging for Node in REST mode (tests/fakes/cloudlogging_client_check.js).
Limits: no reading entries back, no jsonPayload checks, no quotas.
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402
import logrecv  # noqa: E402

SEVERITIES = {"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
          500: "INTERNAL", 413: "INVALID_ARGUMENT"}
# The protobuf JSON mapping lets an enum be its number (Google's Node client
# sends severity: 200).
SEVERITY_NUMBERS = {0: "DEFAULT", 100: "DEBUG", 200: "INFO", 300: "NOTICE", 400: "WARNING", 500: "ERROR",
                    600: "CRITICAL", 700: "ALERT", 800: "EMERGENCY"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def gerror(code, message):
    return {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN")}}


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parse(doc):
    if not isinstance(doc, dict):
        raise ValueError("Invalid JSON payload received.")
    entries = doc.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ValueError("entries: at least one log entry is required")
    if len(entries) > 1000:
        raise ValueError(f"Request has {len(entries)} entries; at most 1000 are allowed")
    out = []
    for i, e in enumerate(entries):
        where = f"entries[{i}]"
        ln = e.get("logName", doc.get("logName"))
        if not isinstance(ln, str) or not re.match(r"^projects/[^/]+/logs/[^/]+$", ln):
            raise ValueError(f"{where}.logName: expected projects/[PROJECT_ID]/logs/[LOG_ID], got {ln!r}")
        payloads = [k for k in ("textPayload", "jsonPayload", "protoPayload") if k in e]
        if len(payloads) != 1:
            raise ValueError(f"{where}: exactly one of textPayload, jsonPayload, protoPayload is required")
        sev = e.get("severity", "DEFAULT")
        if isinstance(sev, int) and not isinstance(sev, bool):
            sev = SEVERITY_NUMBERS.get(sev, sev)
        if sev not in SEVERITIES:
            raise ValueError(f"{where}.severity: invalid value {sev!r}")
        ts = e.get("timestamp")
        if ts is not None and (not isinstance(ts, str) or not TS.match(ts)):
            raise ValueError(f"{where}.timestamp: invalid {ts!r}")
        labels = e.get("labels", {})
        res = e.get("resource", doc.get("resource")) or {}
        for k, v in list(labels.items()) + list((res.get("labels") or {}).items()):
            if not isinstance(v, str):
                raise ValueError(f"{where}: label {k!r} must be a string")
        out.append({
            "key": e.get("insertId") or f"auto-{time.time_ns()}-{i}",
            "run_id": (res.get("labels") or {}).get("build_id"),
            "project": (res.get("labels") or {}).get("project_id"),
            "log_name": ln, "resource_type": res.get("type"),
            "step": labels.get("step_id"), "stream": labels.get("stream"),
            "seq": int(labels["seq"]) if "seq" in labels else None,
            "severity": sev, "timestamp": ts,
            "body": e.get("textPayload"),
            "partial": labels.get("partial") == "true",
            "split": e.get("split"),
        })
    return out


class Handler(fakelib.LoggingHandler):
    # Headers and body go out in two writes: with Nagle, the body waits for
    # the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def authorized(self):
        cfg = self.server.cfg
        h = self.headers.get("Authorization") or ""
        tok = h[7:] if h.startswith("Bearer ") else None
        return tok is not None and (tok == cfg.token or tok in cfg.issued)

    def issue(self):
        cfg = self.server.cfg
        with cfg.faults.lock:
            cfg.n_issued += 1
            tok = f"issued-{cfg.n_issued}"
            cfg.issued.add(tok)
        logrecv.send_json(self, 200, {"access_token": tok, "expires_in": 3600, "token_type": "Bearer"})

    def do_GET(self):
        if logrecv.handle_control(self):
            return
        if self.path.startswith("/computeMetadata/v1/instance/service-accounts/default/token"):
            if self.headers.get("Metadata-Flavor") != "Google":
                logrecv.send_json(self, 403, {"error": "Missing Metadata-Flavor:Google header"})
                return
            self.issue()
            return
        logrecv.send_json(self, 404, gerror(404, "not found"))

    def token_endpoint(self, raw):
        cfg = self.server.cfg
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            logrecv.send_json(self, 400, {"error": "unsupported_grant_type"})
            return
        try:
            h64, c64, s64 = form.get("assertion", "").split(".")
            hdr, claims = json.loads(b64d(h64)), json.loads(b64d(c64))
            if hdr.get("alg") != "RS256":
                raise ValueError("alg must be RS256")
            for k in ("iss", "aud", "scope", "iat", "exp"):
                if k not in claims:
                    raise ValueError(f"claim {k} missing")
            if not cfg.pubkey:
                raise ValueError("no --jwt-pubkey to check the signature")
            with tempfile.NamedTemporaryFile() as sig, tempfile.NamedTemporaryFile() as data:
                sig.write(b64d(s64)); sig.flush()
                data.write(f"{h64}.{c64}".encode()); data.flush()
                r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", cfg.pubkey, "-signature",
                                    sig.name, data.name], capture_output=True)
            if r.returncode != 0:
                raise ValueError("Invalid JWT Signature.")
        except (ValueError, KeyError) as e:
            logrecv.send_json(self, 400, {"error": "invalid_grant", "error_description": str(e)})
            return
        cfg.jwt_claims.append(claims)
        self.issue()

    def do_POST(self):
        if logrecv.handle_control(self):
            return
        raw = self._read_body()
        path = self.path.split("?")[0]
        if path == "/token":
            self.token_endpoint(raw)
            return
        if path != "/v2/entries:write":
            logrecv.send_json(self, 404, gerror(404, f"no such method {path}"))
            return
        if not self.authorized():
            logrecv.send_json(self, 401, gerror(401, "Request had invalid authentication credentials. "
                                                 "Expected OAuth 2 access token, login cookie or other valid "
                                                 "authentication credential."))
            return
        if len(raw) > 10 * 1000 * 1000:
            logrecv.send_json(self, 400, gerror(400, "Request payload size exceeds the limit: 10485760 bytes."))
            return
        try:
            if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                import gzip
                raw = gzip.decompress(raw)
            records = parse(json.loads(raw))
        except (ValueError, OSError, EOFError) as e:
            logrecv.send_json(self, 400, gerror(400, str(e)))
            return
        if logrecv.apply_fault(self, lambda: records, gerror):
            return
        self.server.cfg.faults.keep(records)
        logrecv.send_json(self, 200, {})


def main():
    ap = fakelib.arg_parser(__doc__.split("\n")[0])
    ap.add_argument("--jwt-pubkey", help="PEM public key that checks JWT grants at /token")
    args = ap.parse_args()
    server = fakelib.make_server(args, Handler, None)
    server.cfg.faults = logrecv.Faults()
    server.cfg.issued = set()
    server.cfg.n_issued = 0
    server.cfg.pubkey = args.jwt_pubkey
    server.cfg.jwt_claims = []
    return fakelib.serve(server, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
