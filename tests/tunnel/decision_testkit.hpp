#pragma once
// The simulated node and the helpers that decision_test.cpp (IPv4) and decision_v6_test.cpp share:
// a node's data path over a table of its own, the tunnel destinations of nodes A (10.0.0.1) and B
// (10.0.0.2), and checks of a (rewritten) packet.
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/checksum.hpp"
#include "test_entries.hpp"
#include "tunnel/decision.hpp"

namespace nm::test {

struct DecisionNode {
    NodeIdentity identity;
    TranslationTable table;
    ConversionCache cache;
    Balancer balancer;
    RttEstimates rtt;
    PathCounters counters;
    ServiceUse uses;
    PathContext path{table, cache, balancer, identity, rtt, counters, uses};

    // A node at `node_ip` with the /24 `subnet` (and the /120 `subnet_v6` when given).
    DecisionNode(TranslationTable t, const char* node_ip, const char* subnet,
                 const char* subnet_v6 = nullptr)
        : table(std::move(t)) {
        identity.node_ip = ip(node_ip);
        identity.local_subnet = Cidr{ip(subnet), 24};
        identity.networks.service_network = Cidr{ip("172.30.0.0"), 16};
        identity.networks.container_network = Cidr{ip("172.16.0.0"), 12};
        if (subnet_v6) identity.local_subnet_v6 = Cidr6{ip6(subnet_v6), 120};
        cache.set_now(ConversionCache::Clock::now());
    }
};

inline const SendTo to_a{Ipv4{0x0a000001}, 50103};
inline const SendTo to_b{Ipv4{0x0a000002}, 50103};

// Every checksum of the (rewritten) packet equals a full recomputation (the IPv4 header's too).
inline bool checksums_ok(std::vector<uint8_t> bytes) {
    auto p = view(bytes);
    if (p.is_ipv4() && !ipv4_header_checksum_ok(p)) return false;
    if (!p.l4_checksum_offset()) return true;
    auto copy = bytes;
    auto q = view(copy);
    fill_checksums(q);
    return copy == bytes;
}

inline Decision out(DecisionNode& n, std::vector<uint8_t>& bytes, L4Csum csum = L4Csum::full,
                    bool after_query = false) {
    return decide_outgoing(std::span<uint8_t>(bytes), n.path, csum, after_query);
}
inline Decision out(DecisionNode& n, std::vector<uint8_t>& bytes, bool after_query) {
    return out(n, bytes, L4Csum::full, after_query);
}
inline Decision in(DecisionNode& n, std::vector<uint8_t>& bytes) {
    return decide_incoming(std::span<uint8_t>(bytes), n.path);
}

}  // namespace nm::test
