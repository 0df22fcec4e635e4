#include "core/too_big.hpp"

#include <algorithm>
#include <cstring>

#include "core/checksum.hpp"

namespace nm {

namespace {
constexpr uint8_t kIcmpUnreachable = 3, kIcmpFragNeeded = 4;
constexpr uint8_t kIcmp6TooBig = 2;
constexpr uint8_t kHopLimit = 64;

// ICMP types that are errors (RFC 792: unreachable, source quench, redirect, time exceeded,
// parameter problem); every ICMPv6 type below 128 (RFC 4443 2.1).
bool is_icmp_error(const PacketView& packet) {
    // parse() checked that an ICMP header is there, unless this is a later fragment.
    const uint8_t icmp = packet.is_ipv6() ? ipproto::icmpv6 : ipproto::icmp;
    if (packet.protocol() != icmp || packet.fragment() == Fragment::non_first) return false;
    const uint8_t type = packet.bytes()[packet.l4_offset()];
    if (packet.is_ipv6()) return type < 128;
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

size_t build_v4(std::span<const uint8_t> original, unsigned mtu, std::span<uint8_t> out) {
    const size_t ihl = size_t{original[0] & 0x0fu} * 4;
    if (ihl < 20 || original.size() < ihl + 8) return 0;
    const size_t quote = std::min(original.size(), kTooBigQuote);
    const size_t total = 20 + 8 + quote;
    uint8_t* ip = out.data();
    std::memset(ip, 0, 28);
    ip[0] = 0x45;
    csum::store_be16(ip + 2, static_cast<uint16_t>(total));
    ip[8] = kHopLimit;
    ip[9] = ipproto::icmp;
    std::memcpy(ip + 12, original.data() + 16, 4);  // from the packet's destination
    std::memcpy(ip + 16, original.data() + 12, 4);  // to its source
    csum::set_ipv4_header_checksum(ip);
    uint8_t* icmp = ip + 20;
    icmp[0] = kIcmpUnreachable;
    icmp[1] = kIcmpFragNeeded;
    csum::store_be16(icmp + 6, static_cast<uint16_t>(std::min(mtu, 0xffffu)));
    std::memcpy(icmp + 8, original.data(), quote);
    csum::store_be16(icmp + 2, csum::checksum({icmp, 8 + quote}));
    return total;
}

size_t build_v6(std::span<const uint8_t> original, unsigned mtu, std::span<uint8_t> out) {
    if (original.size() < 48) return 0;
    const size_t quote = std::min(original.size(), kTooBigQuote);
    const size_t length = 8 + quote;  // the ICMPv6 message: the IPv6 payload
    uint8_t* ip = out.data();
    std::memset(ip, 0, 48);
    ip[0] = 0x60;
    csum::store_be16(ip + 4, static_cast<uint16_t>(length));
    ip[6] = ipproto::icmpv6;
    ip[7] = kHopLimit;
    std::memcpy(ip + 8, original.data() + 24, 16);  // from the packet's destination
    std::memcpy(ip + 24, original.data() + 8, 16);  // to its source
    uint8_t* icmp = ip + 40;
    icmp[0] = kIcmp6TooBig;
    csum::store_be32(icmp + 4, mtu);
    std::memcpy(icmp + 8, original.data(), quote);
    const uint64_t pseudo = csum::add({ip + 8, 32}) + length + ipproto::icmpv6;
    csum::store_be16(icmp + 2,
                     static_cast<uint16_t>(~csum::fold(csum::add({icmp, length}, pseudo))));
    return 40 + length;
}
}  // namespace

bool forbids_fragmentation(const PacketView& packet) {
    return packet.is_ipv6() || (packet.bytes()[6] & 0x40) != 0;
}

bool may_answer(const PacketView& packet) {
    return packet.fragment() != Fragment::non_first && !is_icmp_error(packet);
}

size_t build_too_big(std::span<const uint8_t> original, unsigned mtu, std::span<uint8_t> out) {
    if (original.empty() || out.size() < kTooBigMax) return 0;
    switch (original[0] >> 4) {
        case 4:
            return build_v4(original, mtu, out);
        case 6:
            return build_v6(original, mtu, out);
        default:
            return 0;
    }
}

}  // namespace nm
