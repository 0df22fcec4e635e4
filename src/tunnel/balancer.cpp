#include "tunnel/balancer.hpp"

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <limits>

#include "core/checksum.hpp"

namespace nm {

std::optional<std::chrono::microseconds> RttEstimates::get(Ipv4 node_ip) const {
    auto it = rtt_.find(node_ip.value);
    if (it == rtt_.end()) return std::nullopt;
    return it->second;
}

uint32_t SharedTurns::turn_key(const Ipv6& service_ip) {
    uint32_t key = 0;
    for (int i = 0; i < 16; i += 4) key ^= csum::load_be32(service_ip.bytes.data() + i);
    return key;
}

uint32_t Balancer::next_turn(Ipv4 service_ip) {
    return shared_ ? shared_->next(service_ip) : turns_[service_ip.value]++;
}
uint32_t Balancer::next_turn(const Ipv6& service_ip) {
    return shared_ ? shared_->next(service_ip) : turns_v6_[service_ip]++;
}

uint32_t Balancer::choose(Ipv4 service_ip, const ServiceGroup& group, const TranslationTable& table,
                          const NodeIdentity& node, const RttEstimates& rtt) {
    return choose_slot(service_ip, group, table, node, rtt);
}
uint32_t Balancer::choose(const Ipv6& service_ip, const ServiceGroup& group,
                          const TranslationTable& table, const NodeIdentity& node,
                          const RttEstimates& rtt) {
    return choose_slot(service_ip, group, table, node, rtt);
}

template <class Address>
uint32_t Balancer::choose_slot(const Address& service_ip, const ServiceGroup& group,
                               const TranslationTable& table, const NodeIdentity& node,
                               const RttEstimates& rtt) {
    const auto slots = group.slots();
    switch (group.type) {
        case IpType::InstanceNumber:
            return slots.front();
        case IpType::RR:
            return slots[next_turn(service_ip) % slots.size()];
        case IpType::Closest:
            break;
    }
    // Rank: a local instance 0, else 1 + the node's RTT in microseconds, unknown last. Each
    // slot's rank once, on the stack for the usual handful of instances.
    constexpr uint64_t unknown = std::numeric_limits<uint64_t>::max();
    auto rank = [&](uint32_t slot) -> uint64_t {
        const auto& r = table.route(slot);
        if (node.is_self(r.node_ip, r.node_port)) return 0;
        auto d = rtt.get(r.node_ip);
        return d ? 1 + static_cast<uint64_t>(d->count()) : unknown;
    };
    boost::container::small_vector<uint64_t, 16> ranks;
    for (uint32_t slot : slots) ranks.push_back(rank(slot));
    const uint64_t best = *std::min_element(ranks.begin(), ranks.end());
    // Nearly equal estimates are equal: within a tenth of the lowest, and at least 50 us.
    const uint64_t limit =
        best == 0 || best == unknown ? best : best + std::max<uint64_t>(best / 10, 50);
    const auto ties = static_cast<size_t>(
        std::count_if(ranks.begin(), ranks.end(), [limit](uint64_t r) { return r <= limit; }));
    // Ties take turns, as RR would among them.
    size_t pick = ties > 1 ? next_turn(service_ip) % ties : 0;
    for (size_t i = 0; i < slots.size(); ++i) {
        if (ranks[i] <= limit && pick-- == 0) return slots[i];
    }
    return slots.front();  // unreachable: some slot has the best rank
}

}  // namespace nm
