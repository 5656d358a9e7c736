# SPDX-License-Identifier: MIT
"""What kiln's fake API servers (fake_k8s.py, fake_cloudrun.py) share: the
request log, reading a body, a threaded server that ignores clients hanging
up, the common command-line options, and serving until SIGTERM/SIGINT with the
port written to a file."""
import argparse
import json
import os
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class LoggingHandler(BaseHTTPRequestHandler):
    """Every response passes through send_response: that is where the log
    line is written, once. Subclasses set self._logged = False and
    self._log_body before answering."""
    protocol_version = "HTTP/1.1"
    sys_version = ""
    _logged = False
    _log_body = None

    def log_message(self, *args):
        pass

    def send_response(self, code, message=None):
        super().send_response(code, message)
        self._log(code)

    def _log(self, code):
        if self._logged:
            return
        self._logged = True
        cfg = self.server.cfg
        u = urlsplit(self.path)
        line = {"method": self.command, "path": u.path,
                "query": {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()},
                "content_type": self.headers.get("Content-Type"),
                "authorization": self.headers.get("Authorization") is not None,
                "user_agent": self.headers.get("User-Agent"),
                "body": self._log_body, "status": code}
        cn = client_cn(self.connection)
        if cn:
            line["client_cn"] = cn
        with cfg.log_lock:
            if cfg.log is not None:
                cfg.log.write(json.dumps(line) + "\n")
                cfg.log.flush()

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""


def client_cn(conn):
    """The CN of the verified client certificate of a TLS connection, or None."""
    peer = getattr(conn, "getpeercert", None)
    for rdn in ((peer() if peer else None) or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


class Config:
    pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that hangs up or fails the TLS handshake is not news.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def arg_parser(description):
    """The options every fake takes; each adds its own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port-file", required=True, help="where to write the port once listening")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every request")
    return ap


def make_server(args, handler, store):
    """A server on 127.0.0.1 whose cfg holds the token, the log and STORE."""
    cfg = Config()
    cfg.token = args.token
    cfg.log = open(args.log, "a", encoding="utf-8") if args.log else None
    cfg.log_lock = threading.Lock()
    cfg.store = store
    server = Server(("127.0.0.1", args.port), handler)
    server.cfg = cfg
    return server


def serve(server, port_file, stop=None, before_shutdown=None):
    """Serve in a thread, write the port to PORT_FILE (a temporary file
    renamed into place), wait for SIGTERM or SIGINT (or STOP), shut down."""
    stop = stop or threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name="http", daemon=True).start()
    tmp = f"{port_file}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(tmp, port_file)
    while not stop.wait(0.5):
        pass
    if before_shutdown:
        before_shutdown()
    server.shutdown()
    server.server_close()
    cfg = server.cfg
    with cfg.log_lock:
        if cfg.log:
            cfg.log.close()
            cfg.log = None
    return 0
