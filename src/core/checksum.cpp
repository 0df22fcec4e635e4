#include "core/checksum.hpp"

#include <cstring>

namespace nm::csum {

uint64_t add(std::span<const uint8_t> bytes, uint64_t sum) {
    const uint8_t* p = bytes.data();
    size_t n = bytes.size();
    // Whole 32-bit big-endian words first: the fold treats them as two 16-bit words.
    while (n >= 4) {
        sum += load_be32(p);
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        sum += load_be16(p);
        p += 2;
        n -= 2;
    }
    if (n) sum += uint32_t{p[0]} << 8;
    return sum;
}

}  // namespace nm::csum
