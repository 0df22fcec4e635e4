#!/usr/bin/env python3
"""Flow churn for bench/soak, run inside an app namespace.

  soak_traffic.py IP PORT SECONDS RATE STATS_FILE

Opens a new TCP connection (GET /id, service.py serve) and a new UDP socket (echo) to IP:PORT
RATE times a second each, every one a new flow through the agent, for SECONDS. Every second it
rewrites STATS_FILE with one JSON object: tcp_ok, tcp_fail, udp_ok, udp_fail and the last
failure's text. A request fails when it is not answered within 3 s.
"""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from flows import get_id  # noqa: E402  (the GET /id the system cases' flows make)

ip, port, seconds, rate, stats_file = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), \
    float(sys.argv[4]), sys.argv[5]
counts = {"tcp_ok": 0, "tcp_fail": 0, "udp_ok": 0, "udp_fail": 0, "last_failure": ""}
lock = threading.Lock()


def count(key, failure=""):
    with lock:
        counts[key] += 1
        if failure:
            counts["last_failure"] = failure


def tcp_once():
    try:
        data = get_id(ip, port, 3)
        if data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200"):
            count("tcp_ok")
        else:
            count("tcp_fail", "tcp: answer " + repr(data[:40]))
    except OSError as e:
        count("tcp_fail", "tcp: " + str(e))


def udp_once():
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.connect((ip, port))
            s.send(b"soak")
            answer = s.recv(2048)
        if answer.endswith(b"soak"):
            count("udp_ok")
        else:
            count("udp_fail", "udp: answer " + repr(answer[:40]))
    except OSError as e:
        count("udp_fail", "udp: " + str(e))


def write_stats():
    with lock:
        text = json.dumps(counts)
    tmp = stats_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, stats_file)


def pace(work):
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        threading.Thread(target=work, daemon=True).start()
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


threads = [threading.Thread(target=pace, args=(w,)) for w in (tcp_once, udp_once)]
for t in threads:
    t.start()
end = time.monotonic() + seconds
while time.monotonic() < end:
    write_stats()
    time.sleep(1)
for t in threads:
    t.join()
time.sleep(3.5)  # the last requests' answers or timeouts
write_stats()
