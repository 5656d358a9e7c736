# SPDX-License-Identifier: MIT
"""What the fake log receivers (fake_otlp.py, fake_cloudlogging.py) share:
the records they kept, deduplicated by the sender's key, and the faults a
test can ask for.

Control (plain HTTP on the same port, no token):
  POST /_fault {"mode": M, "count": N, "retry_after": S, "seconds": S}
    M is one of
      ok     answer normally (the default)
      429    answer 429 with "Retry-After: S" (default 1), keep nothing
      500    answer 500, keep nothing
      400    answer 400 with an error message, keep nothing
      hang   read the request, answer nothing for S seconds (default 3600),
             keep nothing: the sender's timeout must fire
      close  keep the records, then close the connection without an answer:
             the sender cannot know, retries, and the receiver sees the
             batch twice (what the deduplication key is for)
      down   close the listening socket and every connection for S seconds
             (default 3): connection refused, as a receiver that is down
    N (default 1) is how many log requests the fault applies to; 0 means
    every one until the next /_fault.
  GET /_records -> {"requests": R, "raw": K, "records": [...]}
    R log requests answered 2xx or closed after keeping, K records kept
    counting duplicates, records: the kept records deduplicated by key (the
    first arrival wins), in arrival order.
"""
import json
import socket
import threading
import time


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode, self.left, self.retry_after, self.seconds = "ok", 0, 1, None
        self.down_until = 0.0
        self.records, self.keys = [], set()
        self.raw = 0
        self.partials = 0
        self.requests = 0

    def set(self, spec):
        with self.lock:
            self.mode = spec.get("mode", "ok")
            self.left = int(spec.get("count", 1))
            self.retry_after = spec.get("retry_after", 1)
            self.seconds = spec.get("seconds")

    def take(self):
        """The fault for the next log request: (mode, retry_after, seconds)."""
        with self.lock:
            if self.mode == "ok":
                return "ok", None, None
            mode = self.mode
            if self.left > 0:
                self.left -= 1
                if self.left == 0:
                    self.mode = "ok"
            return mode, self.retry_after, self.seconds

    def keep(self, records):
        """records: dicts with a "key"; keeps the new ones."""
        with self.lock:
            self.requests += 1
            self.raw += len(records)
            for r in records:
                if r["key"] in self.keys:
                    continue
                self.keys.add(r["key"])
                self.records.append(r)

    def dump(self):
        with self.lock:
            return {"requests": self.requests, "raw": self.raw, "partials": self.partials,
                    "records": list(self.records)}


def go_down(server, seconds):
    """Close the listener for SECONDS, then listen again on the same port."""
    def run():
        server.shutdown()
        server.socket.close()
        time.sleep(seconds)
        server.socket = socket.socket(server.address_family, server.socket_type)
        server.server_bind()
        server.server_activate()
        server.cfg.faults.down_until = 0.0
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
    server.cfg.faults.down_until = time.time() + seconds
    threading.Thread(target=run, daemon=True).start()


def handle_control(handler):
    """Answers /_fault and /_records; False for any other path."""
    path = handler.path.split("?")[0]
    if path == "/_fault" and handler.command == "POST":
        spec = json.loads(handler._read_body() or b"{}")
        faults = handler.server.cfg.faults
        send_json(handler, 200, {"ok": True})
        if spec.get("mode") == "down":
            go_down(handler.server, float(spec.get("seconds") or 3))
        else:
            faults.set(spec)
        return True
    if path == "/_records" and handler.command == "GET":
        send_json(handler, 200, handler.server.cfg.faults.dump())
        return True
    return False


def send_json(handler, code, obj, extra=None):
    body = json.dumps(obj).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for k, v in (extra or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)


def drop_connection(handler):
    handler.close_connection = True
    try:
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def apply_fault(handler, records_fn, error_body):
    """Runs the fault for one log request whose body was read. records_fn()
    parses the records (raising ValueError with the receiver's message);
    error_body(code, message) is the receiver's error document. Returns True
    when the request was answered (or dropped) here."""
    faults = handler.server.cfg.faults
    if faults.down_until > time.time():
        drop_connection(handler)
        return True
    mode, retry_after, seconds = faults.take()
    if mode == "429":
        send_json(handler, 429, error_body(429, "Quota exceeded, retry later"),
                  {"Retry-After": str(retry_after)})
    elif mode == "500":
        send_json(handler, 500, error_body(500, "Internal error (injected)"))
    elif mode == "400":
        send_json(handler, 400, error_body(400, "Invalid request (injected fault)"))
    elif mode == "hang":
        time.sleep(float(seconds or 3600))
        drop_connection(handler)
    elif mode == "close":
        faults.keep(records_fn())
        drop_connection(handler)
    elif mode == "down":
        drop_connection(handler)
    else:
        return False
    return True
