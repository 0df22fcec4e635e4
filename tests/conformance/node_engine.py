#!/usr/bin/python3
"""A stand-in for the Oakestra v0.4.411 node engine's calls to its network agent: the same
requests on the unix socket, the same 10 s client timeout, and, like the node engine, only the
status code counts (the body is never read).

  node_engine.py SOCKET register CLIENT_ID [CLUSTER_ADDRESS]   (default "", as the node engine sends)
  node_engine.py SOCKET deploy PID SERVICE INSTANCE PORTMAPPINGS          POST /container/deploy
  node_engine.py SOCKET undeploy SERVICE INSTANCE                         POST /container/undeploy
  node_engine.py SOCKET unikernel-deploy SERVICE INSTANCE PORTMAPPINGS    POST /unikernel/deploy
  node_engine.py SOCKET unikernel-undeploy SERVICE INSTANCE               POST /unikernel/undeploy

Prints "<status> <seconds>" ("timeout 10.0" or "error <reason>" when there is no answer) and exits
0 only for status 200, the node engine's one criterion. The bodies are Go's json.Marshal of the
node engine's request structs: keys in struct order, no spaces; undeploys carry pid -1 and an
empty portMappings, unikernel deploys pid 0.
"""
import http.client
import json
import socket
import sys
import time

TIMEOUT = 10.0


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        # The node engine's URL is http://localhost:0/... (NetManagerPort 0 selects the socket).
        super().__init__("localhost", 0, timeout=TIMEOUT)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.path)


def post(path, socket_path, fields):
    body = json.dumps(fields, separators=(",", ":"))
    conn = UnixConnection(socket_path)
    start = time.monotonic()
    try:
        conn.request("POST", path, body=body, headers={
            "Host": "localhost:0", "User-Agent": "Go-http-client/1.1",
            "Content-Type": "application/json", "Accept-Encoding": "gzip"})
        status = conn.getresponse().status  # headers only: the body stays unread
    except socket.timeout:
        print(f"timeout {time.monotonic() - start:.1f}")
        return 1
    except OSError as e:
        print(f"error {e}")
        return 1
    finally:
        conn.close()
    print(f"{status} {time.monotonic() - start:.2f}")
    return 0 if status == 200 else 1


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    sock, cmd, a = argv[1], argv[2], argv[3:]
    if cmd == "register":
        return post("/register", sock, {"client_id": a[0], "cluster_address": a[1] if len(a) > 1 else ""})
    if cmd == "deploy":
        return post("/container/deploy", sock, {"pid": int(a[0]), "serviceName": a[1],
                                                "instanceNumber": int(a[2]), "portMappings": a[3]})
    if cmd in ("undeploy", "unikernel-undeploy"):
        path = "/container/undeploy" if cmd == "undeploy" else "/unikernel/undeploy"
        return post(path, sock, {"pid": -1, "serviceName": a[0], "instanceNumber": int(a[1]),
                                 "portMappings": ""})
    if cmd == "unikernel-deploy":
        return post("/unikernel/deploy", sock, {"pid": 0, "serviceName": a[0],
                                                "instanceNumber": int(a[1]), "portMappings": a[2]})
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
