#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""HTTP server for tests/unit/test_http.c (standard library only).

Usage: http_test_server.py UNIX_SOCKET_PATH

Serves the same handler over TCP on 127.0.0.1 (a free port) and over the unix
socket, then prints the TCP port on a line of its own. It exits when its stdin
reaches end of file, so it never outlives the test that started it.

Endpoints (any method; a request body, chunked or not, is always read):
  /echo                 JSON: method, path, headers (names lowercased), body
                        (latin-1 text), body_len, crc32, chunked, via
                        ("tcp" or "unix")
  /upload               JSON: bytes, crc32 (zlib) of the body, chunked
  /stream?n=N&delay_ms=D  N JSON lines {"i": i}, chunked, D ms between lines
  /delay?ms=D[&group=G] sleeps D ms, then JSON {"slept": D, "id": X-Id header,
                        "peak": the most /delay requests of group G in
                        progress at once while this one was}
  /status/NNN           status NNN, JSON body
  /large?bytes=N        N bytes with Content-Length; byte at offset o is o % 251
"""
import json
import os
import socketserver
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DELAY_LOCK = threading.Lock()
DELAY_GROUPS = {}  # group name -> [{"peak": n}] of the /delay requests in progress

PATTERN_PERIOD = 251
PATTERN_BLOCK = bytes(range(PATTERN_PERIOD)) * 4096  # about 1 MiB, whole periods


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - base class name
        pass

    # -- request body ------------------------------------------------------
    def is_chunked(self):
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def body_chunks(self):
        if self.is_chunked():
            while True:
                line = self.rfile.readline()
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, 1 << 16))
                    if not data:
                        raise ConnectionError("eof in chunk")
                    left -= len(data)
                    yield data
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    raise ConnectionError("eof in body")
                left -= len(data)
                yield data

    # -- responses ---------------------------------------------------------
    def send_json(self, obj, status=200):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- dispatch ----------------------------------------------------------
    def handle_any(self):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/upload":
                count, crc = 0, 0
                for data in self.body_chunks():
                    count += len(data)
                    crc = zlib.crc32(data, crc)
                self.send_json({"bytes": count, "crc32": crc, "chunked": self.is_chunked()})
                return
            body = b"".join(self.body_chunks())
            if url.path == "/echo":
                self.send_json({
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("latin-1"),
                    "body_len": len(body),
                    "crc32": zlib.crc32(body),
                    "chunked": self.is_chunked(),
                    "via": self.server.kiln_kind,
                })
            elif url.path == "/stream":
                n = int(query.get("n", "5"))
                delay = int(query.get("delay_ms", "200")) / 1000.0
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                for i in range(n):
                    if i:
                        time.sleep(delay)
                    self.write_chunk(json.dumps({"i": i}).encode() + b"\n")
                self.wfile.write(b"0\r\n\r\n")
            elif url.path == "/delay":
                ms = int(query.get("ms", "1000"))
                group = DELAY_GROUPS.setdefault(query.get("group", ""), [])
                me = {"peak": 0}
                with DELAY_LOCK:
                    group.append(me)
                    for other in group:
                        other["peak"] = max(other["peak"], len(group))
                try:
                    time.sleep(ms / 1000.0)
                finally:
                    with DELAY_LOCK:
                        group.remove(me)
                self.send_json({"slept": ms, "id": self.headers.get("X-Id"), "peak": me["peak"]})
            elif url.path.startswith("/status/"):
                status = int(url.path[len("/status/"):])
                self.send_json({"status": status}, status)
            elif url.path == "/large":
                left = int(query.get("bytes", "0"))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(left))
                self.end_headers()
                while left:
                    block = PATTERN_BLOCK[:left]
                    self.wfile.write(block)
                    left -= len(block)
            else:
                self.send_json({"error": "no such endpoint"}, 404)
        except (BrokenPipeError, ConnectionResetError, ConnectionError):
            self.close_connection = True  # the client went away: fine here

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


class TcpServer(ThreadingHTTPServer):
    daemon_threads = True
    kiln_kind = "tcp"


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    kiln_kind = "unix"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: http_test_server.py UNIX_SOCKET_PATH")
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    servers = [TcpServer(("127.0.0.1", 0), Handler), UnixServer(path, Handler)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(servers[0].server_address[1], flush=True)
    sys.stdin.read()  # until the test closes our stdin or dies
    os._exit(0)


if __name__ == "__main__":
    main()
