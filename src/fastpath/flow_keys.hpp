#pragma once
// A flow's keys in the kernel's flow maps (bpf/fastpath_maps.h: network byte order): the key its
// packets leave with (the egress map's), and the key its replies from the peer node arrive with
// (the ingress map's).
#include <arpa/inet.h>

#include "core/address.hpp"
#include "fastpath_maps.h"
#include "tunnel/conversion_cache.hpp"

namespace nm {

inline nm_flow_key to_bpf(const FlowKey& k) {
    nm_flow_key key{};
    key.src = k.source.network_order();
    key.dst = k.destination.network_order();
    key.sport = htons(k.source_port);
    key.dport = htons(k.destination_port);
    key.proto = k.protocol;
    return key;
}

inline FlowKey from_bpf(const nm_flow_key& k) {
    return FlowKey{Ipv4::from_network(k.src), Ipv4::from_network(k.dst), ntohs(k.sport),
                   ntohs(k.dport), k.proto};
}

// Replies come from the instance's InstanceNumber ServiceIP (reply_source) to the sender's
// nsip, ports swapped.
inline nm_flow_key reply_key(const FlowKey& k, Ipv4 reply_source) {
    return to_bpf(FlowKey{reply_source, k.source, k.destination_port, k.source_port, k.protocol});
}

}  // namespace nm
