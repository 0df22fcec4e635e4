#!/usr/bin/python3
"""A delay line for simulated hosts (the kernel here has no netem): a userspace Ethernet switch
between veth ports in a router namespace that holds every frame for the one-way delays of the
port it came in on and the port it leaves by. A round trip between hosts on ports a and b so
takes 2 * (delay[a] + delay[b]) more than it would.

  delay_line.py CONFIG STATS PORT...

CONFIG holds lines "PORT MS [noecho]": the one-way delay of PORT in milliseconds (default 0),
and with noecho, ICMP echo requests and replies through PORT are dropped (a node that stops
answering probes). It is read at start and again on SIGHUP. Every second STATS gets a JSON
object: {"frames": N, "echo_requests": {"SRC>DST": N, ...}, "delays": {PORT: MS}}.

Frames are read from AF_PACKET sockets with PACKET_VNET_HDR and sent on with the same header,
so segmentation and checksum offloads pass through untouched.
"""
import heapq
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
VNET_HDR = 10


def read_config(path, ports):
    delays, noecho = {p: 0.0 for p in ports}, set()
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] in delays:
                    delays[fields[0]] = float(fields[1]) / 1000.0
                    if "noecho" in fields[2:]:
                        noecho.add(fields[0])
    except FileNotFoundError:
        pass
    return delays, noecho


def echo_kind(frame):
    """(src, dst, is_request) of an IPv4 ICMP echo request or reply, else None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00" or frame[14 + 9] != 1:
        return None
    ihl = (frame[14] & 0x0F) * 4
    if len(frame) < 14 + ihl + 1 or frame[14 + ihl] not in (0, 8):
        return None
    src, dst = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
    return src, dst, frame[14 + ihl] == 8


def main():
    config, stats_path, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
    socks = {}
    for port in ports:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((port, 0))
        s.setblocking(False)
        socks[port] = s
    by_fd = {s.fileno(): p for p, s in socks.items()}
    state = {"reload": True}
    signal.signal(signal.SIGHUP, lambda *_: state.update(reload=True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    delays, noecho = {}, set()
    macs = {}  # source MAC -> port it was last seen on
    queue, seq = [], 0  # (due, seq, port, bytes)
    frames, echo_requests, last_stats = 0, {}, 0.0

    while True:
        if state["reload"]:
            state["reload"] = False
            delays, noecho = read_config(config, ports)
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, port, data = heapq.heappop(queue)
            try:
                socks[port].send(data)
            except OSError:
                pass  # a full queue or a port going away: the frame is lost, as on a wire
        if now - last_stats >= 1.0:
            last_stats = now
            tmp = stats_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"frames": frames, "echo_requests": echo_requests,
                           "delays": {p: d * 1000 for p, d in delays.items()}}, f)
            os.replace(tmp, stats_path)
        timeout = max(0.0, min(queue[0][0] - now, 0.2)) if queue else 0.2
        try:
            ready, _, _ = select.select(list(by_fd), [], [], timeout)
        except InterruptedError:
            continue
        for fd in ready:
            inp = by_fd[fd]
            for _ in range(64):
                try:
                    data, addr = socks[inp].recvfrom(65536 + VNET_HDR)
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == PACKET_OUTGOING or len(data) < VNET_HDR + 14:
                    continue  # our own sends, seen again
                frames += 1
                # The header's DATA_VALID flag describes receipt; only NEEDS_CSUM goes on.
                data = bytes([data[0] & 1]) + data[1:]
                frame = data[VNET_HDR:]
                macs[frame[6:12]] = inp
                echo = echo_kind(frame)
                if echo:
                    if inp in noecho:
                        continue
                    if echo[2]:
                        key = f"{echo[0]}>{echo[1]}"
                        echo_requests[key] = echo_requests.get(key, 0) + 1
                dst = frame[0:6]
                outs = [macs[dst]] if dst in macs else [p for p in ports if p != inp]
                for out in outs:
                    if out == inp or (echo and out in noecho):
                        continue
                    seq += 1
                    due = time.monotonic() + delays.get(inp, 0) + delays.get(out, 0)
                    heapq.heappush(queue, (due, seq, out, data))


if __name__ == "__main__":
    main()
