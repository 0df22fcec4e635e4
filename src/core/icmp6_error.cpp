#include "core/icmp6_error.hpp"

#include <cstring>

#include "core/checksum.hpp"

namespace nm {

std::optional<Icmp6Error> Icmp6Error::of(const PacketView& packet) {
    if (!packet.is_ipv6() || packet.protocol() != ipproto::icmpv6 ||
        packet.fragment() != Fragment::none)
        return std::nullopt;
    auto bytes = packet.bytes();
    const size_t icmp = packet.l4_offset();
    const uint8_t type = bytes[icmp];
    if (type < 1 || type > 4) return std::nullopt;  // errors only: 1-4 (RFC 4443)
    const size_t quote = icmp + 8;
    // The quoted fixed header and the first four bytes after it: the ports.
    if (bytes.size() < quote + 44 || (bytes[quote] >> 4) != 6) return std::nullopt;
    const uint8_t next = bytes[quote + 6];
    if (next != ipproto::tcp && next != ipproto::udp) return std::nullopt;
    return Icmp6Error(bytes, icmp);
}

uint16_t Icmp6Error::source_port() const {
    return csum::load_be16(&bytes_[quote_ + 40]);
}
uint16_t Icmp6Error::destination_port() const {
    return csum::load_be16(&bytes_[quote_ + 42]);
}

Ipv6 Icmp6Error::load(size_t at) const {
    Ipv6 a;
    std::memcpy(a.bytes.data(), &bytes_[at], 16);
    return a;
}

void Icmp6Error::rewrite_quote(const Ipv6& source, const Ipv6& destination) {
    uint8_t* quote = &bytes_[quote_];
    const uint64_t delta = csum::delta128(quote + 8, source.bytes.data()) +
                           csum::delta128(quote + 24, destination.bytes.data());
    std::memcpy(quote + 8, source.bytes.data(), 16);
    std::memcpy(quote + 24, destination.bytes.data(), 16);
    uint8_t* field = &bytes_[icmp_ + 2];
    csum::store_be16(field, csum::update(csum::load_be16(field), delta));
}

}  // namespace nm
