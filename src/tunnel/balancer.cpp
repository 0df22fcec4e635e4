#include "tunnel/balancer.hpp"

#include <limits>

namespace nm {

std::optional<std::chrono::microseconds> RttEstimates::get(Ipv4 node_ip) const {
    auto it = rtt_.find(node_ip.value);
    if (it == rtt_.end()) return std::nullopt;
    return it->second;
}

uint32_t Balancer::next_turn(Ipv4 service_ip) {
    return shared_ ? shared_->next(service_ip) : turns_[service_ip.value]++;
}

uint32_t Balancer::choose(Ipv4 service_ip, const ServiceGroup& group, const TranslationTable& table,
                          const NodeIdentity& node, const RttEstimates& rtt) {
    const auto& slots = group.slots;
    switch (group.type) {
        case IpType::InstanceNumber:
            return slots.front();
        case IpType::RR:
            return slots[next_turn(service_ip) % slots.size()];
        case IpType::Closest:
            break;
    }
    // Rank: a local instance 0, else 1 + the node's RTT in microseconds, unknown last.
    auto rank = [&](uint32_t slot) -> uint64_t {
        const auto& r = table.route(slot);
        if (node.is_self(r.node_ip, r.node_port)) return 0;
        auto d = rtt.get(r.node_ip);
        return d ? 1 + static_cast<uint64_t>(d->count()) : std::numeric_limits<uint64_t>::max();
    };
    uint64_t best = std::numeric_limits<uint64_t>::max();
    size_t ties = 0;
    for (uint32_t slot : slots) {
        const uint64_t r = rank(slot);
        if (r < best) {
            best = r;
            ties = 1;
        } else if (r == best) {
            ++ties;
        }
    }
    // Ties take turns, as RR would among them; no allocation on this path.
    size_t pick = ties > 1 ? next_turn(service_ip) % ties : 0;
    for (uint32_t slot : slots) {
        if (rank(slot) == best && pick-- == 0) return slot;
    }
    return slots.front();  // unreachable: some slot has the best rank
}

}  // namespace nm
