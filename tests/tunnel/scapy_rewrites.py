#!/usr/bin/python3
"""Real packets for the rewrite test, made by scapy (an independent implementation).

Writes one line per case: "<original hex> <new source> <new destination> <expected hex>",
where the expected packet is scapy's own rebuild with the new addresses and every checksum
recomputed from scratch. Usage: scapy_rewrites.py OUTPUT_FILE
"""
import random
import sys

from scapy.all import ICMP, IP, TCP, UDP, Raw, fragment, raw  # noqa: E402

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


def main():
    lines = []
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
