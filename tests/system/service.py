#!/usr/bin/env python3
"""A test service and its clients, run inside app namespaces.

  service.py serve PORT NAME DIR   HTTP on TCP PORT (GET /id answers NAME, GET /peer the client's
                                   address as seen here, other paths serve files from DIR) and a
                                   UDP echo on PORT answering "NAME <payload>"; IPv4 and IPv6
  service.py udp-ask IP PORT [LOCALPORT [SIZE]]  a connected UDP socket (so only replies from
                                   IP:PORT count), from LOCALPORT if given (0: any); prints the
                                   answer, exit 1 after 3 s without one. With SIZE the payload is
                                   SIZE random bytes and the answer is printed as "NAME SIZE intact"
                                   when it echoes them exactly ("NAME N corrupt" otherwise)
  service.py tcp-later IP PORT SECS  connects to IP:PORT at once, sends GET /id only SECS later
                                   on that connection and prints the answer's body
  service.py udp-listen PORT SECS  prints every datagram received on UDP PORT (IPv4 and IPv6) for
                                   SECS seconds
  service.py udp-hold IP PORT SECS like udp-ask, but prints "LOCALPORT ANSWER" and then every
                                   further datagram from IP:PORT until SECS pass without one
  service.py tcp-reset PORT        a TCP server on PORT that answers each connection's first data
                                   with "bye" and then aborts it (SO_LINGER 0: an RST, no FIN)
  service.py tcp-hello IP PORT     connects, sends "hello", prints what comes back and "reset"
                                   once the peer aborts the connection (sending nothing after)
  service.py udp-stream PORT SECS  a UDP server on PORT that answers the first datagram it gets
                                   with "tick" every 0.3 s for SECS seconds, to its sender alone
  service.py tcp-echo PORT         a TCP server on PORT that sends back whatever it receives
  service.py tcp-drip IP PORT SECS connects and for SECS seconds sends 1000 bytes every 20 ms,
                                   printing the total echoed back after each read; then "done"
"""
import functools
import http.server
import os
import select
import socket
import socketserver
import struct
import sys
import threading
import time


def family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def dual_stack(kind):
    """A socket on :: that takes IPv4 too (as ::ffff:a.b.c.d)."""
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return s


def unmapped(address):
    return address[7:] if address.startswith("::ffff:") else address


def serve(port, name, directory):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path in ("/id", "/peer"):
                body = (name if self.path == "/id" else unmapped(self.client_address[0])).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                super().do_GET()

        def log_message(self, *args):
            pass

    def udp_echo():
        s = dual_stack(socket.SOCK_DGRAM)
        s.bind(("::", port))
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(name.encode() + b" " + data, peer)

    threading.Thread(target=udp_echo, daemon=True).start()
    class Server(socketserver.ThreadingTCPServer):
        address_family = socket.AF_INET6
        allow_reuse_address = True
        daemon_threads = True

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    handler = functools.partial(Handler, directory=directory)
    with Server(("::", port), handler) as server:
        server.serve_forever()


def udp_ask(ip, port, local_port=0, size=0):
    s = socket.socket(family(ip), socket.SOCK_DGRAM)
    s.bind(("::" if ":" in ip else "0.0.0.0", local_port))
    s.connect((ip, port))
    s.settimeout(3)
    payload = os.urandom(size) if size else b"ping"
    s.send(payload)
    try:
        answer = s.recv(65535)
        if size:
            name, _, echo = answer.partition(b" ")
            print(name.decode(), len(echo), "intact" if echo == payload else "corrupt")
        else:
            print(answer.decode())
    except socket.timeout:
        print(f"no answer from {ip}:{port}", file=sys.stderr)
        sys.exit(1)


def udp_hold(ip, port, secs):
    s = socket.socket(family(ip), socket.SOCK_DGRAM)
    s.connect((ip, port))
    s.settimeout(3)
    s.send(b"ping")
    print(s.getsockname()[1], s.recv(65535).decode(), flush=True)
    s.settimeout(secs)
    try:
        while True:
            print(s.recv(65535).decode(), flush=True)
    except socket.timeout:
        pass


def tcp_later(ip, port, secs):
    s = socket.create_connection((ip, port), timeout=5)
    print("connected", flush=True)
    time.sleep(secs)
    s.sendall(b"GET /id HTTP/1.0\r\n\r\n")
    s.settimeout(10)
    response = b""
    while chunk := s.recv(65535):
        response += chunk
    print(response.split(b"\r\n\r\n", 1)[-1].decode(), flush=True)


def udp_listen(port, secs):
    s = dual_stack(socket.SOCK_DGRAM)
    s.bind(("::", port))
    s.settimeout(secs)
    try:
        while True:
            data, peer = s.recvfrom(65535)
            print(f"{unmapped(peer[0])}:{peer[1]} {data!r}", flush=True)
    except socket.timeout:
        pass


def tcp_reset(port):
    server = dual_stack(socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("::", port))
    server.listen()
    while True:
        conn, _ = server.accept()
        conn.recv(65535)
        conn.sendall(b"bye")
        time.sleep(0.2)  # "bye" is acknowledged before the RST
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def tcp_hello(ip, port):
    s = socket.create_connection((ip, port), timeout=5)
    s.sendall(b"hello")
    try:
        while chunk := s.recv(65535):
            print(chunk.decode(), end=" ", flush=True)
        print("closed", flush=True)
    except ConnectionResetError:
        print("reset", flush=True)


def udp_stream(port, secs):
    s = dual_stack(socket.SOCK_DGRAM)
    s.bind(("::", port))
    _, peer = s.recvfrom(65535)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.sendto(b"tick", peer)
        time.sleep(0.3)


def tcp_echo(port):
    server = dual_stack(socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("::", port))
    server.listen()

    def echo(conn):
        with conn:
            while data := conn.recv(65535):
                conn.sendall(data)

    while True:
        conn, _ = server.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def tcp_drip(ip, port, secs):
    s = socket.create_connection((ip, port), timeout=5)
    s.setblocking(False)
    echoed, end, next_send = 0, time.monotonic() + secs, 0.0
    try:
        while (now := time.monotonic()) < end:
            if now >= next_send:
                try:
                    s.send(b"x" * 1000)
                except BlockingIOError:
                    pass  # the send buffer is full: the peer is gone
                next_send = now + 0.02
            if select.select([s], [], [], max(0.0, next_send - time.monotonic()))[0]:
                data = s.recv(65535)
                if not data:
                    break
                echoed += len(data)
                print(echoed, flush=True)
    except OSError as e:
        print(e, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "udp-ask":
        udp_ask(sys.argv[2], int(sys.argv[3]), *(int(a) for a in sys.argv[4:6]))
    elif cmd == "udp-hold":
        udp_hold(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "tcp-later":
        tcp_later(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "tcp-reset":
        tcp_reset(int(sys.argv[2]))
    elif cmd == "tcp-hello":
        tcp_hello(sys.argv[2], int(sys.argv[3]))
    elif cmd == "udp-stream":
        udp_stream(int(sys.argv[2]), float(sys.argv[3]))
    elif cmd == "tcp-echo":
        tcp_echo(int(sys.argv[2]))
    elif cmd == "tcp-drip":
        tcp_drip(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "udp-listen":
        udp_listen(int(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit(__doc__)
