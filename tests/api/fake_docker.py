#!/usr/bin/python3
"""A stand-in for the Docker engine's API on a unix socket, for /docker/deploy tests.

GET /containers/<id>/json answers from a fixed set:
  web1    -> running, State.Pid 4321
  stopped -> not running, State.Pid 0
  other   -> 404 {"message": "No such container: <id>"}
"""
import http.server
import json
import os
import socketserver
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def address_string(self):
        return "unix"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) == 4 and parts[1] == "containers" and parts[3] == "json":
            cid = parts[2]
            if cid == "web1":
                return self.answer(200, {"Id": "web1", "State": {"Running": True, "Pid": 4321}})
            if cid == "stopped":
                return self.answer(200, {"Id": "stopped", "State": {"Running": False, "Pid": 0}})
            return self.answer(404, {"message": f"No such container: {cid}"})
        self.answer(404, {"message": "page not found"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(socketserver.UnixStreamServer):
    def get_request(self):
        request, _ = super().get_request()
        return request, ("unix", 0)


path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
with Server(path, Handler) as server:
    open(path + ".ready", "w").close()
    server.serve_forever()
