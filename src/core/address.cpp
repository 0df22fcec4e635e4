#include "core/address.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "core/parse.hpp"

namespace nm {

Result<Ipv4> Ipv4::parse(std::string_view text) {
    uint32_t value = 0;
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (p == end || *p != '.') break;
            ++p;
        }
        unsigned octet = 0;
        auto [next, ec] = std::from_chars(p, end, octet);
        if (ec != std::errc{} || octet > 255 || next - p > 3 || (next - p > 1 && *p == '0'))
            return fail(Errc::invalid_argument, "not an IPv4 address: '" + excerpt(text) + "'");
        value = value << 8 | octet;
        p = next;
        if (part == 3 && p == end) return Ipv4{value};
    }
    return fail(Errc::invalid_argument, "not an IPv4 address: '" + excerpt(text) + "'");
}

std::string Ipv4::to_string() const {
    char buf[INET_ADDRSTRLEN];
    uint32_t be = network_order();
    inet_ntop(AF_INET, &be, buf, sizeof buf);
    return buf;
}

uint32_t Ipv4::network_order() const {
    return htonl(value);
}
Ipv4 Ipv4::from_network(uint32_t be) {
    return Ipv4{ntohl(be)};
}

Result<Cidr> Cidr::parse(std::string_view text) {
    auto slash = text.find('/');
    auto ip = Ipv4::parse(text.substr(0, slash));
    if (!ip) return tl::unexpected(ip.error());
    unsigned prefix = 32;
    if (slash != std::string_view::npos) {
        auto digits = parse_whole<unsigned>(text.substr(slash + 1));
        if (!digits || *digits > 32)
            return fail(Errc::invalid_argument, "bad prefix length in '" + excerpt(text) + "'");
        prefix = *digits;
    }
    return Cidr{*ip, static_cast<uint8_t>(prefix)};
}

Result<Cidr> Cidr::from_mask(std::string_view address, std::string_view mask) {
    auto ip = Ipv4::parse(address);
    if (!ip) return tl::unexpected(ip.error());
    auto m = Ipv4::parse(mask);
    if (!m) return tl::unexpected(m.error());
    uint32_t bits = m->value;
    int prefix = __builtin_popcount(bits);
    if (prefix != 32 && bits != (prefix == 0 ? 0u : ~uint32_t{0} << (32 - prefix)))
        return fail(Errc::invalid_argument,
                    "not a contiguous netmask: '" + std::string(mask) + "'");
    return Cidr{*ip, static_cast<uint8_t>(prefix)};
}

std::string Cidr::to_string() const {
    return network.to_string() + "/" + std::to_string(prefix);
}

}  // namespace nm
