#pragma once
// IPv4 addresses and prefixes, held in host byte order; IPv6 ones as their 16 bytes.
#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace nm {

struct Ipv4 {
    uint32_t value = 0;  // host byte order: 10.0.0.1 == 0x0a000001

    static Result<Ipv4> parse(std::string_view text);
    std::string to_string() const;
    uint32_t network_order() const;
    static Ipv4 from_network(uint32_t be);

    friend bool operator==(Ipv4, Ipv4) = default;
    friend auto operator<=>(Ipv4, Ipv4) = default;
};

struct Cidr {
    Ipv4 network;
    uint8_t prefix = 32;

    // "172.19.1.0/24"; a bare address means /32.
    static Result<Cidr> parse(std::string_view text);
    // Address plus a dotted mask, as the reference config gives them ("172.30.0.0", "255.255.0.0").
    static Result<Cidr> from_mask(std::string_view address, std::string_view mask);
    uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
    bool contains(Ipv4 ip) const { return (ip.value & mask()) == (network.value & mask()); }
    Ipv4 host(uint32_t index) const { return Ipv4{(network.value & mask()) + index}; }
    uint32_t size() const { return prefix == 0 ? 0xffffffffu : (uint32_t{1} << (32 - prefix)); }
    std::string to_string() const;

    friend bool operator==(const Cidr&, const Cidr&) = default;
};

// An IPv6 address, its 16 bytes in network order. All zero (::) is "none" where a field is
// optional (an entry without nsipv6).
struct Ipv6 {
    std::array<uint8_t, 16> bytes{};

    // Any textual form inet_pton accepts ("fc00::102", "::ffff:1.2.3.4").
    static Result<Ipv6> parse(std::string_view text);
    // RFC 5952 ("fc00::102").
    std::string to_string() const;
    bool is_unspecified() const { return *this == Ipv6{}; }

    // Two 64-bit compares (the defaulted one called memcmp; per packet in the IPv6 path).
    friend bool operator==(const Ipv6& a, const Ipv6& b) {
        const auto x = std::bit_cast<std::array<uint64_t, 2>>(a.bytes);
        const auto y = std::bit_cast<std::array<uint64_t, 2>>(b.bytes);
        return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
    }
    friend auto operator<=>(const Ipv6&, const Ipv6&) = default;
};

struct Cidr6 {
    Ipv6 network;
    uint8_t prefix = 128;

    // "fc00::100/120"; a bare address means /128.
    static Result<Cidr6> parse(std::string_view text);
    bool contains(const Ipv6& ip) const;
    // The network's `index`-th address (index added to the masked network).
    Ipv6 host(uint64_t index) const;
    // The index of `ip` within the network (meaningful when contains(ip) and prefix >= 64).
    uint64_t index_of(const Ipv6& ip) const;
    std::string to_string() const;

    friend bool operator==(const Cidr6&, const Cidr6&) = default;
};

}  // namespace nm

template <>
struct std::hash<nm::Ipv4> {
    size_t operator()(nm::Ipv4 ip) const noexcept { return std::hash<uint32_t>{}(ip.value); }
};

template <>
struct std::hash<nm::Ipv6> {
    size_t operator()(const nm::Ipv6& ip) const noexcept {
        uint64_t hi = 0, lo = 0;
        for (int i = 0; i < 8; ++i) hi = hi << 8 | ip.bytes[i];
        for (int i = 8; i < 16; ++i) lo = lo << 8 | ip.bytes[i];
        return std::hash<uint64_t>{}(hi * 0x9e3779b97f4a7c15ull ^ lo);
    }
};
