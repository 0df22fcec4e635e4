#!/usr/bin/env python3
"""Many flows at once to one address, all started together (run inside an app namespace).

  flows.py tcp N IP PORT   N TCP connections, each GET /id (service.py serve); the connects are
                           released together by a barrier
  flows.py serve PORT NAME a TCP server answering any request with "HTTP/1.0 200" and NAME; its
                           listen backlog (1024) takes a burst of SYNs released at once
  flows.py udp N IP PORT   N UDP sockets (N source ports), each sends "ping" and waits for the
                           echo, resending every second, 10 tries
Prints "ok <successes> fail <failures>" and then "<answer> <count>" per distinct answer; exit 0
only when every flow got an answer.
"""
import collections
import socket
import socketserver
import sys
import threading


def serve(port, name):
    body = name.encode()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 1024

    with Server(("0.0.0.0", port), Handler) as server:
        server.serve_forever()


def get_id(ip, port, timeout):
    """GET /id on a new TCP connection to ip:port: the whole answer, read until the server closes."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(b"GET /id HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk


def tcp_flow(ip, port, barrier, answers):
    barrier.wait()
    try:
        data = get_id(ip, port, 20)
        head, _, body = data.partition(b"\r\n\r\n")
        answers.append(body.decode() if head.startswith(b"HTTP/1.0 200") else f"status:{head[:20]!r}")
    except OSError as e:
        answers.append(f"error:{e.__class__.__name__}")


def udp_flow(ip, port, barrier, answers):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((ip, port))  # replies count only from the address we sent to
    s.settimeout(1)
    barrier.wait()
    try:
        for _ in range(10):
            s.send(b"ping")
            try:
                answers.append(s.recv(65535).decode().split(" ")[0])
                return
            except socket.timeout:
                continue
        answers.append("error:timeout")
    finally:
        s.close()


def main():
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
        return
    mode, n, ip, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    flow = {"tcp": tcp_flow, "udp": udp_flow}[mode]
    answers = []
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=flow, args=(ip, port, barrier, answers)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = collections.Counter(answers)
    failed = sum(c for a, c in counts.items() if a.startswith(("error:", "status:")))
    print(f"ok {n - failed} fail {failed}")
    for answer, count in sorted(counts.items()):
        print(f"{answer} {count}")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
