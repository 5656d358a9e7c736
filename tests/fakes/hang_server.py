#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A server that accepts HTTP requests and never answers them: a cluster, a
Cloud Run endpoint or a Docker engine that hangs (a dead proxy, a stuck
load balancer), for the tests of what kiln does with a step stuck in a
request (tests/integration/test_abandon_deploy.sh).

Usage:
  python3 hang_server.py --port-file FILE [--port 0] [--log FILE] [--docker]
Listens on 127.0.0.1 (plain HTTP). Each request's head is read and logged
to --log as one JSON line {"method", "path"} (written when the head has
arrived); then nothing is sent and nothing more is read (a body stays in
the socket buffers, so an upload stalls), until the client goes away.
--docker: GET /version and /_ping are answered as a Docker engine answers
them (API 1.41), so that docker-build gets as far as its POST /build. SIGTERM
or SIGINT closes every connection and exits 0.

Limits: no TLS, no keep-alive after an answered request (the connection is
closed), heads up to 64 KiB.
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading

VERSION = {"ApiVersion": "1.41", "Version": "0.0-hang", "MinAPIVersion": "1.12",
           "Components": [{"Name": "Hanging Engine", "Version": "0.0-hang"}]}


def main():
    ap = argparse.ArgumentParser(description="An HTTP server that never answers (see the header).")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--docker", action="store_true", help="answer GET /version and /_ping as a Docker engine")
    args = ap.parse_args()
    lock = threading.Lock()
    held = []
    log = open(args.log, "a", encoding="utf-8") if args.log else None

    def serve(conn):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return
            if not chunk:
                conn.close()
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        method, path = (line + ["", ""])[:2]
        with lock:
            if log:
                log.write(json.dumps({"method": method, "path": path}) + "\n")
                log.flush()
        bare = path.split("?", 1)[0]
        if args.docker and method == "GET" and (bare.endswith("/version") or bare.endswith("/_ping")):
            body = json.dumps(VERSION).encode() if bare.endswith("/version") else b"OK"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            conn.close()
            return
        # Hold it: nothing is read or sent until the client hangs up.

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)

    def accept():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with lock:
                held.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    tmp = f"{args.port_file}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{srv.getsockname()[1]}\n")
    os.replace(tmp, args.port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    while not stop.wait(0.2):
        pass
    with lock:
        for c in held:
            try:
                c.close()
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
