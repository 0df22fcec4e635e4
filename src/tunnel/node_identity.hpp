#pragma once
// Who this node is, as the data path needs it.
#include <cstdint>

#include "core/address.hpp"

namespace nm {

struct NodeIdentity {
    Ipv4 node_ip;                  // this node's tunnel address (NodePublicAddress)
    uint16_t tunnel_port = 50103;  // this node's tunnel UDP port
    Cidr local_subnet;             // this node's bridge subnet, e.g. 172.19.1.0/24
    Cidr service_network{Ipv4{0xac1e0000}, 16};    // 172.30.0.0/16
    Cidr container_network{Ipv4{0xac100000}, 12};  // 172.16.0.0/12

    bool is_self(Ipv4 ip, uint16_t port) const { return ip == node_ip && port == tunnel_port; }
};

}  // namespace nm
