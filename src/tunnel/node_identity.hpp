#pragma once
// Who this node is, as the data path needs it.
#include <cstdint>

#include "core/address.hpp"
#include "core/address_plan.hpp"

namespace nm {

struct NodeIdentity {
    Ipv4 node_ip;                  // this node's tunnel address (NodePublicAddress)
    uint16_t tunnel_port = 50103;  // this node's tunnel UDP port
    Cidr local_subnet;             // this node's bridge subnet, e.g. 10.18.0.64/26
    Networks networks;             // the cluster's container and service networks, IPv4 and IPv6
    // This node's IPv6 /120 (none, ::/128, until the node has one).
    Cidr6 local_subnet_v6{};

    bool is_self(Ipv4 ip, uint16_t port) const { return ip == node_ip && port == tunnel_port; }
};

}  // namespace nm
