#pragma once
// The Internet checksum (RFC 1071) and its incremental update (RFC 1624), on 16-bit words in
// host order (the value of a big-endian field as read with load_be16). Header-only pieces are
// inline because they sit on the per-packet path.
#include <cstddef>
#include <cstdint>
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

}  // namespace nm::csum
