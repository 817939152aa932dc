#!/usr/bin/env python3
"""A stand-in for a Healthchecks ping endpoint, for cronrun's --ping tests.

Listens on 127.0.0.1 (an ephemeral port, written to --port-file once it
listens) and appends one JSON line per request it receives to --log: method,
path, query, body, the request's arrival order. What it answers is --mode:

  ok            200 "OK" to everything
  status:N      N to everything (500, 404, ...)
  fail-first:K  500 to the first K requests, then 200
  hang          records the request, then never answers
  close         records the request, then closes the connection unanswered

The request is recorded before it is answered (or not), so a test sees every
request cronrun made, whatever became of it.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", default="ok")
    args = ap.parse_args()

    lock = threading.Lock()
    seen = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet: the log file is the record
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            with lock:
                seen["n"] += 1
                n = seen["n"]
                entry = {
                    "n": n,
                    "method": self.command,
                    "path": parts.path,
                    "query": parts.query,
                    "body": body.decode("utf-8", "replace"),
                    "content_type": self.headers.get("Content-Type"),
                    "user_agent": self.headers.get("User-Agent"),
                    "t": time.time(),
                }
                with open(args.log, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            mode = args.mode
            if mode == "hang":
                time.sleep(3600)
                return
            if mode == "close":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            status = 200
            if mode.startswith("status:"):
                status = int(mode.split(":", 1)[1])
            elif mode.startswith("fail-first:"):
                status = 500 if n <= int(mode.split(":", 1)[1]) else 200
            reply = b"OK" if status == 200 else b"error"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_HEAD = handle_any

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
