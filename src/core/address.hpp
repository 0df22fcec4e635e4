#pragma once
// IPv4 addresses and prefixes, held in host byte order.
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

}  // namespace nm

template <>
struct std::hash<nm::Ipv4> {
    size_t operator()(nm::Ipv4 ip) const noexcept { return std::hash<uint32_t>{}(ip.value); }
};
