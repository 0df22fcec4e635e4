#pragma once
// The Internet checksum (RFC 1071) and its incremental update (RFC 1624), the one home of
// checksum code. Two representations of a sum:
//  - host order: 16-bit words as read with load_be16 (add, pseudo_header_v4, the updates);
//  - native order (the *_native helpers): words summed as they lie in memory, 8 bytes at a time,
//    which gives the checksum in network byte order when stored back with store_native16; every
//    other value (lengths, protocol) is added in network byte order. For full recomputation of
//    large packets (segmentation).
// Header-only pieces are inline because they sit on the per-packet path.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace nm::csum {

inline uint16_t load_be16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline void store_be16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
inline uint32_t load_be32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void store_be32(uint8_t* p, uint32_t v) {
    store_be16(p, static_cast<uint16_t>(v >> 16));
    store_be16(p + 2, static_cast<uint16_t>(v));
}

// Folds a wide sum of 16-bit words to the 16-bit one's complement sum (end-around carry).
// A non-zero input never folds to 0, so "negative zero" stays 0xffff.
inline uint16_t fold(uint64_t sum) {
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

// Adds the bytes as big-endian 16-bit words; an odd tail is padded with a zero byte.
uint64_t add(std::span<const uint8_t> bytes, uint64_t sum = 0);

// The checksum field value for `bytes` (complement of the folded sum).
inline uint16_t checksum(std::span<const uint8_t> bytes) {
    return static_cast<uint16_t>(~fold(add(bytes)));
}

// The TCP/UDP pseudo-header sum of IPv4 (addresses in host order).
inline uint64_t pseudo_header_v4(uint32_t src, uint32_t dst, uint8_t protocol, uint32_t l4_length) {
    return uint64_t{src >> 16} + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + protocol +
           l4_length;
}

// The one's complement difference of replacing the 32-bit value m by m' (~m + m'), to be added
// to a sum; several differences can be added before one update.
inline uint64_t delta32(uint32_t old_value, uint32_t new_value) {
    return uint64_t{~old_value >> 16} + (~old_value & 0xffff) + (new_value >> 16) +
           (new_value & 0xffff);
}
// The same for a 128-bit value (an IPv6 address) given as its 16 network-order bytes.
inline uint64_t delta128(const uint8_t* old_value, const uint8_t* new_value) {
    uint64_t sum = 0;
    for (int i = 0; i < 16; i += 4)
        sum += delta32(load_be32(old_value + i), load_be32(new_value + i));
    return sum;
}
// RFC 1624 eqn. 3 with a precomputed difference.
inline uint16_t update(uint16_t field, uint64_t delta) {
    return static_cast<uint16_t>(~fold(uint64_t{static_cast<uint16_t>(~field)} + delta));
}
inline uint16_t update_partial(uint16_t field, uint64_t delta) {
    return fold(field + delta);
}

// RFC 1624 eqn. 3 for a checksum field that holds a complemented sum (IPv4 header, TCP, UDP):
// HC' = ~(~HC + ~m + m'), with a 32-bit field m (an address) replaced by m'.
inline uint16_t update32(uint16_t field, uint32_t old_value, uint32_t new_value) {
    uint64_t sum = uint64_t{static_cast<uint16_t>(~field)} + (~old_value >> 16) +
                   (~old_value & 0xffff) + (new_value >> 16) + (new_value & 0xffff);
    return static_cast<uint16_t>(~fold(sum));
}

// The same for a field that holds a PARTIAL checksum (virtio_net_hdr NEEDS_CSUM, the kernel's
// CHECKSUM_PARTIAL): the un-complemented pseudo-header sum, which the device completes later.
// So the old value is subtracted and the new one added without the outer complements.
inline uint16_t update32_partial(uint16_t field, uint32_t old_value, uint32_t new_value) {
    uint64_t sum = uint64_t{field} + (~old_value >> 16) + (~old_value & 0xffff) +
                   (new_value >> 16) + (new_value & 0xffff);
    return fold(sum);
}

// Native order: adds `len` bytes at `p` to `acc`. `p` must start at an even offset of the
// checksummed data; an odd tail is padded with a zero byte.
inline uint64_t add_native(const uint8_t* p, size_t len, uint64_t acc = 0) {
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
inline uint64_t pseudo_header_native(const uint8_t* ip, uint8_t protocol, uint32_t l4_length) {
    const bool v6 = (ip[0] >> 4) == 6;
    uint64_t acc = v6 ? add_native(ip + 8, 32) : add_native(ip + 12, 8);
    acc += htonl(l4_length);
    acc += htonl(protocol);
    return acc;
}

inline uint16_t load_native16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline void store_native16(uint8_t* p, uint16_t v) {
    std::memcpy(p, &v, 2);
}

// Recomputes the IPv4 header checksum in place.
inline void set_ipv4_header_checksum(uint8_t* ip) {
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    store_native16(ip + 10, 0);
    store_native16(ip + 10, static_cast<uint16_t>(~fold(add_native(ip, ihl))));
}

}  // namespace nm::csum
