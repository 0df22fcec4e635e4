#include "core/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <bit>
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

namespace {

// "ADDRESS[/PREFIX]" for either family; a bare address is a host prefix (Net's default).
template <class Net>
Result<Net> parse_cidr(std::string_view text) {
    const unsigned most = Net{}.prefix;
    auto slash = text.find('/');
    auto ip = decltype(Net::network)::parse(text.substr(0, slash));
    if (!ip) return tl::unexpected(ip.error());
    unsigned prefix = most;
    if (slash != std::string_view::npos) {
        auto digits = parse_whole<unsigned>(text.substr(slash + 1));
        if (!digits || *digits > most)
            return fail(Errc::invalid_argument, "bad prefix length in '" + excerpt(text) + "'");
        prefix = *digits;
    }
    return Net{*ip, static_cast<uint8_t>(prefix)};
}

}  // namespace

Result<Cidr> Cidr::parse(std::string_view text) {
    return parse_cidr<Cidr>(text);
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

Result<Ipv6> Ipv6::parse(std::string_view text) {
    Ipv6 ip;
    std::string copy(text);  // inet_pton wants a terminated string
    if (text.size() > INET6_ADDRSTRLEN || copy.find('\0') != std::string::npos ||
        inet_pton(AF_INET6, copy.c_str(), ip.bytes.data()) != 1)
        return fail(Errc::invalid_argument, "not an IPv6 address: '" + excerpt(text) + "'");
    return ip;
}

std::string Ipv6::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

namespace {

// The byte mask of `prefix` bits at byte i.
uint8_t mask_byte(uint8_t prefix, int i) {
    int bits = std::clamp(int(prefix) - 8 * i, 0, 8);
    return static_cast<uint8_t>(0xff00u >> bits);
}

}  // namespace

Result<Cidr6> Cidr6::parse(std::string_view text) {
    return parse_cidr<Cidr6>(text);
}

namespace {
// The first `bits` bits (clamped to 0..64) of eight network-order bytes read as one word.
uint64_t leading_bits_mask(int bits) {
    const uint64_t host = bits <= 0 ? 0 : bits >= 64 ? ~uint64_t{0} : ~uint64_t{0} << (64 - bits);
    return std::endian::native == std::endian::little ? std::byteswap(host) : host;
}
// Network order <-> host order of a 64-bit word (the same swap both ways).
uint64_t big_endian(uint64_t word) {
    return std::endian::native == std::endian::little ? std::byteswap(word) : word;
}
}  // namespace

// Per packet in the IPv6 data path: two masked 64-bit compares, not sixteen byte ones.
bool Cidr6::contains(const Ipv6& ip) const {
    const auto a = std::bit_cast<std::array<uint64_t, 2>>(ip.bytes);
    const auto n = std::bit_cast<std::array<uint64_t, 2>>(network.bytes);
    return (((a[0] ^ n[0]) & leading_bits_mask(prefix)) |
            ((a[1] ^ n[1]) & leading_bits_mask(prefix - 64))) == 0;
}

// Per incoming IPv6 packet (is the destination the subnet's base or bridge?): 64-bit words in
// host order, a carry from the low word into the high one.
Ipv6 Cidr6::host(uint64_t index) const {
    const auto n = std::bit_cast<std::array<uint64_t, 2>>(network.bytes);
    uint64_t high = big_endian(n[0] & leading_bits_mask(prefix));
    const uint64_t low = big_endian(n[1] & leading_bits_mask(prefix - 64)) + index;
    high += low < index;
    return std::bit_cast<Ipv6>(std::array<uint64_t, 2>{big_endian(high), big_endian(low)});
}

uint64_t Cidr6::index_of(const Ipv6& ip) const {
    uint64_t index = 0;
    for (int i = 8; i < 16; ++i)
        index = index << 8 | static_cast<uint8_t>(ip.bytes[i] & ~mask_byte(prefix, i));
    return index;
}

std::string Cidr6::to_string() const {
    return network.to_string() + "/" + std::to_string(prefix);
}

}  // namespace nm
