#!/usr/bin/env python3
"""An mDNS querier from port 5353, as a full responder (avahi) asks (RFC 6762 5.2, 5.4).

  mdns_probe.py qu NAME    one question with the QU (unicast-response) bit
  mdns_probe.py qm NAME    one question without it (multicast response expected)

Sends from 0.0.0.0:5353 to 224.0.0.251:5353 and prints, for the first response that answers
NAME: "<destination address of the response> <A address>", or "none" after 2 s.
"""
import socket
import struct
import sys

from scapy.layers.dns import DNS

IP_PKTINFO = 8


def query(name, qu):
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!6H", 0, 0, 1, 0, 0, 0) + qname + struct.pack("!2H", 1, 0x8001 if qu else 1)


def main():
    mode, name = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", 5353))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton("224.0.0.251") + socket.inet_aton("0.0.0.0"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.settimeout(2)
    s.sendto(query(name, mode == "qu"), ("224.0.0.251", 5353))
    try:
        while True:
            data, anc, _, _ = s.recvmsg(9000, socket.CMSG_SPACE(12))
            dest = "?"
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    dest = socket.inet_ntoa(value[8:12])  # ipi_addr: the header's destination
            msg = DNS(data)
            if not msg.qr:
                continue  # our own query, looped back
            for i in range(msg.ancount):
                rr = msg.an[i]
                if rr.rrname.decode().rstrip(".").lower() == name.lower() and rr.type == 1:
                    print(dest, rr.rdata)
                    return
    except socket.timeout:
        print("none")


main()
