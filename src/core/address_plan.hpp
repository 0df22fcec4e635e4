#pragma once
// The reference agent's default address plan (protocol.md, "Addressing"); all configurable.
#include <cstdint>

#include "core/address.hpp"

namespace nm {

inline constexpr Ipv4 default_tunnel_ip{0x0a1301fe};                    // 10.19.1.254
inline constexpr Cidr default_service_network{Ipv4{0x0a1e0000}, 16};    // 10.30.0.0/16
inline constexpr uint8_t container_network_prefix = 12;                 // TunnelIP/12
inline constexpr Cidr default_container_network{Ipv4{0x0a100000}, 12};  // 10.16.0.0/12
inline constexpr uint8_t default_subnet_prefix = 26;      // a node subnet the cluster assigns
inline constexpr uint8_t default_subnet_prefix_v6 = 120;  // and its IPv6 one

// IPv6: every namespace of every node in fc00::/7, ServiceIPs in fdff::/16 (instance addresses
// fdff::/21, RR fdff:2000::/21), the TUN fcef::dead:beef/7.
inline constexpr Ipv6 default_tunnel_ipv6{
    {0xfc, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}};
inline constexpr uint8_t tunnel_ipv6_prefix = 7;
inline constexpr Cidr6 default_container_network_v6{Ipv6{{0xfc}}, 7};       // fc00::/7
inline constexpr Cidr6 default_service_network_v6{Ipv6{{0xfd, 0xff}}, 16};  // fdff::/16

// The ranges the agent works in: every nsip lies in the container network, every ServiceIP in
// the service network. One value, from the configuration, handed to the API, the table writer,
// the environment and the data path.
struct Networks {
    Cidr container_network = default_container_network;
    Cidr service_network = default_service_network;
    Cidr6 container_network_v6 = default_container_network_v6;
    Cidr6 service_network_v6 = default_service_network_v6;
};

}  // namespace nm
