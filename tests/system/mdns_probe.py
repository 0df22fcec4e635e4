#!/usr/bin/env python3
"""An mDNS querier from port 5353, as a full responder (avahi) asks (RFC 6762 5.2, 5.4).

  mdns_probe.py [-6] [--aaaa] qu NAME...   the questions with the QU (unicast-response) bit
  mdns_probe.py [-6] [--aaaa] qm NAME...   the questions without it (multicast response expected)

All NAMEs go in one query (several questions). Sends from port 5353 to 224.0.0.251:5353, or with
-6 to [ff02::fb]:5353 on eth0, asking A (--aaaa: AAAA) records, and prints, once responses have
answered every NAME: "<destination address of the last response> <address for each NAME>", or
"none" after 2 s without any answer.
"""
import socket
import struct
import sys

from scapy.layers.dns import DNS

IP_PKTINFO = 8


def query(names, qtype, qu):
    out = struct.pack("!6H", 0, 0, len(names), 0, 0, 0)
    for name in names:
        out += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
        out += struct.pack("!2H", qtype, 0x8001 if qu else 1)
    return out


def open_socket(v6):
    if v6:
        ifindex = socket.if_nametoindex("eth0")
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.bind(("::", 5353))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                     socket.inet_pton(socket.AF_INET6, "ff02::fb") + struct.pack("@I", ifindex))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        return s, ("ff02::fb", 5353, 0, ifindex)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", 5353))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton("224.0.0.251") + socket.inet_aton("0.0.0.0"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    return s, ("224.0.0.251", 5353)


def destination(anc):
    for level, kind, value in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            return socket.inet_ntoa(value[8:12])  # ipi_addr: the header's destination
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            return socket.inet_ntop(socket.AF_INET6, value[:16])
    return "?"


def main():
    args = sys.argv[1:]
    v6 = "-6" in args
    qtype = 28 if "--aaaa" in args else 1
    args = [a for a in args if a not in ("-6", "--aaaa")]
    mode, names = args[0], args[1:]
    s, group = open_socket(v6)
    s.settimeout(2)
    s.sendto(query(names, qtype, mode == "qu"), group)
    found, dest = {}, "?"
    try:
        while len(found) < len(names):
            data, anc, _, _ = s.recvmsg(9000, socket.CMSG_SPACE(32))
            msg = DNS(data)
            if not msg.qr:
                continue  # our own query, looped back
            for i in range(msg.ancount):
                rr = msg.an[i]
                owner = rr.rrname.decode().rstrip(".").lower()
                for name in names:
                    if owner == name.lower() and rr.type == qtype:
                        found[name] = rr.rdata
                        dest = destination(anc)
    except socket.timeout:
        if not found:
            print("none")
            return
    print(dest, " ".join(str(found.get(name, "-")) for name in names))


main()
