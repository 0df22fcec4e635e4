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

}  // namespace nm
