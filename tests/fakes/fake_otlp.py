#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake OpenTelemetry logs receiver (OTLP/HTTP, protobuf JSON mapping) for
kiln's tests, with injectable faults (logrecv.py).

  python3 fake_otlp.py --port-file FILE [--port 0] [--log FILE] [--token T]

POST /v1/logs takes an ExportLogsServiceRequest as JSON
(Content-Type application/json; Content-Encoding gzip allowed) and answers
200 {"partialSuccess": {}} as the Collector does. The document is checked:
resourceLogs[].scopeLogs[].logRecords[] with body.stringValue (or any
AnyValue), attributes as [{key, value}], timeUnixNano as a decimal string or
number; anything else is 400 {"code": 3, "message": ...} (google.rpc.Status,
as the OTLP spec says). protobuf bodies get 415. It is checked by the real
OpenTelemetry exporter for Node (@opentelemetry/exporter-logs-otlp-http,
tests/integration/test_sink_otlp.sh).

Each record kept is {"key", "run_id", "service", "step", "stream", "seq",
"severity", "severity_number", "time_ns", "body", "partial", "gzip"}; the key is the
kiln.record.id attribute, or the request number and index for senders
without one. /_records and /_fault are described in logrecv.py.
--count-only (bench/ship.sh): nothing is parsed or kept; /_records says how
many kiln.record.id attributes arrived ("raw", duplicates included) and how
many kiln.partial ones ("partials": a line kiln passed on in two pieces
counts twice in "raw").
Limits: no protobuf, no metrics or traces, no TLS, no limits on sizes.
"""
import gzip
import json
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakelib  # noqa: E402
import logrecv  # noqa: E402


def status(code, message):
    return {"code": code, "message": message}


def anyvalue(v):
    if not isinstance(v, dict) or len(v) != 1:
        raise ValueError(f"invalid AnyValue {json.dumps(v)[:80]}")
    (k, x), = v.items()
    if k == "stringValue":
        return x
    if k in ("intValue", "doubleValue", "boolValue", "bytesValue"):
        return x
    if k in ("arrayValue", "kvlistValue"):
        return x
    raise ValueError(f"unknown AnyValue field {k!r}")


def attrs(lst, where):
    if lst is None:
        return {}
    if not isinstance(lst, list):
        raise ValueError(f"{where}.attributes: expected an array")
    out = {}
    for a in lst:
        if not isinstance(a, dict) or not isinstance(a.get("key"), str):
            raise ValueError(f"{where}.attributes: expected {{key, value}}")
        out[a["key"]] = anyvalue(a.get("value", {"stringValue": ""}))
    return out


def nanos(v, where):
    if v is None:
        return 0
    if isinstance(v, int) or (isinstance(v, str) and v.isdigit()):
        return int(v)
    if isinstance(v, dict) and "low" in v and "high" in v:  # protobufjs Long
        return (int(v["high"]) << 32) | (int(v["low"]) & 0xffffffff)
    raise ValueError(f"{where}: invalid fixed64 {v!r}")


def parse(doc, request_no):
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceLogs"), list):
        raise ValueError("expected an object with resourceLogs")
    out = []
    for i, rl in enumerate(doc["resourceLogs"]):
        res = attrs((rl.get("resource") or {}).get("attributes"), f"resourceLogs[{i}].resource")
        for j, sl in enumerate(rl.get("scopeLogs") or []):
            for k, lr in enumerate(sl.get("logRecords") or []):
                where = f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                a = attrs(lr.get("attributes"), where)
                body = lr.get("body")
                out.append({
                    "key": a.get("kiln.record.id") or f"req{request_no}-{i}-{j}-{k}",
                    "run_id": res.get("cicd.pipeline.run.id"),
                    "service": res.get("service.name"),
                    "step": a.get("cicd.pipeline.task.name"),
                    "stream": a.get("log.iostream"),
                    "seq": int(a["kiln.seq"]) if "kiln.seq" in a else None,
                    "severity": lr.get("severityText"),
                    "severity_number": lr.get("severityNumber"),
                    "time_ns": nanos(lr.get("timeUnixNano"), where + ".timeUnixNano"),
                    "body": anyvalue(body) if body is not None else None,
                    "partial": bool(a.get("kiln.partial", False)),
                })
    return out


class Handler(fakelib.LoggingHandler):
    # Headers and body go out in two writes: with Nagle, the body waits for
    # the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def do_GET(self):
        if not logrecv.handle_control(self):
            logrecv.send_json(self, 404, status(5, "not found"))

    def do_POST(self):
        if logrecv.handle_control(self):
            return
        raw = self._read_body()
        if self.path.split("?")[0] != "/v1/logs":
            logrecv.send_json(self, 404, status(5, f"no such path {self.path}"))
            return
        cfg = self.server.cfg
        if cfg.token and self.headers.get("Authorization") != f"Bearer {cfg.token}":
            logrecv.send_json(self, 401, status(16, "missing or wrong Authorization"))
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            logrecv.send_json(self, 415, status(3, f"unsupported content type {ctype!r} (this fake speaks JSON only)"))
            return
        if cfg.count_only:
            # Bench mode: no parsing, the records are counted by their key.
            if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                raw = gzip.decompress(raw)
            n = raw.count(b'"kiln.record.id"')
            parts = raw.count(b'"kiln.partial"')
            with cfg.faults.lock:
                cfg.req_no += 1
            if logrecv.apply_fault(self, lambda: [], status):
                return
            with cfg.faults.lock:
                cfg.faults.requests += 1
                cfg.faults.raw += n
                cfg.faults.partials += parts
            logrecv.send_json(self, 200, {"partialSuccess": {}})
            return
        try:
            gz = (self.headers.get("Content-Encoding") or "").lower() == "gzip"
            if gz:
                raw = gzip.decompress(raw)
            doc = json.loads(raw)
            with cfg.faults.lock:
                cfg.req_no += 1
                n = cfg.req_no
            records = parse(doc, n)
            for r in records:
                r["gzip"] = gz
        except (ValueError, OSError, EOFError) as e:
            logrecv.send_json(self, 400, status(3, f"invalid ExportLogsServiceRequest: {e}"))
            return
        if logrecv.apply_fault(self, lambda: records, status):
            return
        cfg.faults.keep(records)
        logrecv.send_json(self, 200, {"partialSuccess": {}})


def main():
    ap = fakelib.arg_parser(__doc__.split("\n")[0])
    ap.add_argument("--count-only", action="store_true",
                    help="bench mode: count records (by kiln.record.id), keep none")
    args = ap.parse_args()
    server = fakelib.make_server(args, Handler, None)
    server.cfg.faults = logrecv.Faults()
    server.cfg.req_no = 0
    server.cfg.count_only = args.count_only
    return fakelib.serve(server, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
