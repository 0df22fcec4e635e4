#pragma once
// The Internet checksum (RFC 1071) over raw memory, fast: sums are taken over native 16-bit
// words (8 bytes at a time), which gives the checksum in network byte order when stored back
// with memcpy; pass every other value (lengths, protocol) already in network byte order.
// Folding and big-endian field access are core/checksum.hpp's (csum::).
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/checksum.hpp"

namespace nm::inet {

// Adds `len` bytes at `p` to `acc`. `p` must start at an even offset of the checksummed data; an
// odd tail is padded with a zero byte.
inline uint64_t sum(const uint8_t* p, size_t len, uint64_t acc = 0) {
    while (len >= 8) {
        uint32_t a, b;
        std::memcpy(&a, p, 4);
        std::memcpy(&b, p + 4, 4);
        acc += uint64_t{a} + b;
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t a;
        std::memcpy(&a, p, 4);
        acc += a;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t a;
        std::memcpy(&a, p, 2);
        acc += a;
        p += 2;
        len -= 2;
    }
    if (len) {
        uint8_t tail[2] = {p[0], 0};
        uint16_t a;
        std::memcpy(&a, tail, 2);
        acc += a;
    }
    return acc;
}

// The TCP/UDP pseudo-header of an IPv4 (version 4) or IPv6 packet whose IP header is at `ip`.
inline uint64_t pseudo_header(const uint8_t* ip, uint8_t protocol, uint32_t l4_length) {
    const bool v6 = (ip[0] >> 4) == 6;
    uint64_t acc = v6 ? sum(ip + 8, 32) : sum(ip + 12, 8);
    acc += htonl(l4_length);
    acc += htonl(protocol);
    return acc;
}

inline uint16_t load16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline void store16(uint8_t* p, uint16_t v) {
    std::memcpy(p, &v, 2);
}

// Recomputes the IPv4 header checksum in place.
inline void set_ipv4_header_checksum(uint8_t* ip) {
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    store16(ip + 10, 0);
    store16(ip + 10, static_cast<uint16_t>(~csum::fold(sum(ip, ihl))));
}

}  // namespace nm::inet
