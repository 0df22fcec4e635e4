#!/usr/bin/python3
"""Real packets for the rewrite test, made by scapy (an independent implementation).

Writes one line per case: "<original hex> <new source> <new destination> <expected hex>",
where the expected packet is scapy's own rebuild with the new addresses and every checksum
recomputed from scratch. Usage: scapy_rewrites.py OUTPUT_FILE [6] (6: IPv6 packets, extension headers and fragments)
"""
import random
import sys

from scapy.all import (ICMP, IP, TCP, UDP, ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,  # noqa: E402
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, fragment,
                       fragment6, raw)

rng = random.Random(1624)


def addr():
    return "172.%d.%d.%d" % (rng.randint(16, 31), rng.randint(0, 255), rng.randint(1, 254))


def packets(src, dst):
    """The same logical packets for given addresses (fixed seeds per kind keep them equal)."""
    out = []
    seed = rng.getrandbits(32)
    r = random.Random(seed)

    def body():
        return Raw(bytes(r.getrandbits(8) for _ in range(r.randint(0, 300))))

    ident = r.randint(0, 65535)
    out.append(IP(src=src, dst=dst, id=ident) / TCP(sport=r.randint(1, 65535), dport=80, flags="PA",
                                                    seq=r.getrandbits(32)) / body())
    out.append(IP(src=src, dst=dst, id=ident) / TCP(sport=r.randint(1, 65535), dport=443, flags="S",
                                                    options=[("MSS", 1400), ("SAckOK", b""),
                                                             ("WScale", 7)]))
    out.append(IP(src=src, dst=dst, id=ident, options=[b"\x94\x04\x00\x00"]) /
               UDP(sport=r.randint(1, 65535), dport=53) / body())
    out.append(IP(src=src, dst=dst, id=ident) / UDP(sport=5000, dport=5001, chksum=0) / body())
    out.append(IP(src=src, dst=dst, id=ident) / ICMP(type=8, id=r.randint(0, 65535), seq=1) / body())
    out.append(IP(src=src, dst=dst, id=ident, ttl=1) / TCP(sport=1, dport=2, flags="R"))
    return out


def fragments(src, dst, seed):
    r = random.Random(seed)
    data = Raw(bytes(r.getrandbits(8) for _ in range(1200)))
    return fragment(IP(src=src, dst=dst, id=99) / UDP(sport=7, dport=9) / data, fragsize=400)


def addr6():
    return "fc00::%x:%x" % (rng.randint(0, 0xffff), rng.randint(1, 0xffff))


def packets6(src, dst):
    """The IPv6 counterparts: extension headers before TCP and UDP, ICMPv6 echo."""
    out = []
    r = random.Random(rng.getrandbits(32))

    def body():
        return Raw(bytes(r.getrandbits(8) for _ in range(r.randint(0, 300))))

    out.append(IPv6(src=src, dst=dst) / TCP(sport=r.randint(1, 65535), dport=80, flags="PA",
                                            seq=r.getrandbits(32)) / body())
    out.append(IPv6(src=src, dst=dst) / IPv6ExtHdrHopByHop() / TCP(sport=r.randint(1, 65535),
                                                                   dport=443, flags="S"))
    out.append(IPv6(src=src, dst=dst) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(segleft=0) /
               IPv6ExtHdrDestOpt() / UDP(sport=r.randint(1, 65535), dport=53) / body())
    out.append(IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(m=0, offset=0, id=r.getrandbits(32)) /
               UDP(sport=5000, dport=5001) / body())
    out.append(IPv6(src=src, dst=dst) / ICMPv6EchoRequest(id=r.randint(0, 65535), seq=1) / body())
    out.append(IPv6(src=src, dst=dst, hlim=1) / TCP(sport=1, dport=2, flags="R"))
    return out


def fragments6(src, dst, seed):
    r = random.Random(seed)
    data = Raw(bytes(r.getrandbits(8) for _ in range(1200)))
    return fragment6(IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(id=99) / UDP(sport=7, dport=9) /
                     data, 500)


def main():
    lines = []
    v6 = len(sys.argv) > 2 and sys.argv[2] == "6"
    global addr, packets, fragments
    if v6:
        addr, packets, fragments = addr6, packets6, fragments6
    for _ in range(60):
        src, dst, new_src, new_dst = addr(), addr(), addr(), addr()
        state = rng.getstate()
        before = packets(src, dst)
        rng.setstate(state)
        after = packets(new_src, new_dst)
        for a, b in zip(before, after):
            lines.append("%s %s %s %s" % (raw(a).hex(), new_src, new_dst, raw(b).hex()))
        seed = rng.getrandbits(32)
        for a, b in zip(fragments(src, dst, seed), fragments(new_src, new_dst, seed)):
            lines.append("%s %s %s %s" % (raw(a).hex(), new_src, new_dst, raw(b).hex()))
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
