#pragma once
// Choosing an instance for a new flow by the ServiceIP's type (protocol.md "ServiceIP
// semantics"): InstanceNumber (the one instance), RR (each new flow the next instance in turn,
// one counter per ServiceIP), Closest (a local instance first, else the lowest round-trip
// estimate; estimates within a tenth (and 50 us) of the lowest count as equal, and equals and
// unknown nodes take turns as RR would). A flow keeps its instance through the conversion cache,
// so a changed estimate moves only new flows.
#include <array>
#include <atomic>
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/address.hpp"
#include "table/translation_table.hpp"
#include "tunnel/node_identity.hpp"

namespace nm {

// Round-trip estimates per node ip, as the balancers rank them: a snapshot of the node's
// RttEstimator (tunnel/rtt_estimator.hpp) on every shard. Unknown nodes rank last.
class RttEstimates {
  public:
    void set(Ipv4 node_ip, std::chrono::microseconds rtt) { rtt_[node_ip.value] = rtt; }
    void erase(Ipv4 node_ip) { rtt_.erase(node_ip.value); }
    std::optional<std::chrono::microseconds> get(Ipv4 node_ip) const;
    friend bool operator==(const RttEstimates&, const RttEstimates&) = default;

  private:
    boost::unordered_flat_map<uint32_t, std::chrono::microseconds> rtt_;
};

// Round-robin turns shared by the balancers of every shard, so that new flows take turns
// across the node and not per shard (a flow's shard depends on its ports). The one piece of
// data-plane state shards share: a relaxed atomic add per new flow, never per packet.
// ServiceIPs hash onto a fixed set of counters; two that share one still alternate fairly.
class SharedTurns {
  public:
    uint32_t next(Ipv4 service_ip) { return next_for(service_ip.value); }
    uint32_t next(const Ipv6& service_ip) { return next_for(turn_key(service_ip)); }
    // An IPv6 ServiceIP's 32-bit key for the counters (its four words xor-ed).
    static uint32_t turn_key(const Ipv6& service_ip);

  private:
    uint32_t next_for(uint32_t key) {
        return turns_[(key * 2654435761u) >> 20].fetch_add(1, std::memory_order_relaxed);
    }

    std::array<std::atomic<uint32_t>, 4096> turns_{};
};

class Balancer {
  public:
    // shared: the node's turns; none keeps turns per balancer.
    explicit Balancer(SharedTurns* shared = nullptr) : shared_(shared) {}

    // Picks a slot of `group` (which must not be empty) for a new flow to `service_ip`.
    // Instances on `node` (same node ip and tunnel port) count as closest.
    // IPv6 ServiceIPs choose by the same rules, with turns of their own.
    uint32_t choose(Ipv4 service_ip, const ServiceGroup& group, const TranslationTable& table,
                    const NodeIdentity& node, const RttEstimates& rtt);
    uint32_t choose(const Ipv6& service_ip, const ServiceGroup& group,
                    const TranslationTable& table, const NodeIdentity& node,
                    const RttEstimates& rtt);

  private:
    template <class Address>
    uint32_t choose_slot(const Address& service_ip, const ServiceGroup& group,
                         const TranslationTable& table, const NodeIdentity& node,
                         const RttEstimates& rtt);
    uint32_t next_turn(Ipv4 service_ip);
    uint32_t next_turn(const Ipv6& service_ip);
    SharedTurns* shared_;
    boost::unordered_flat_map<uint32_t, uint32_t> turns_;  // ServiceIP -> flows started
    boost::unordered_flat_map<Ipv6, uint32_t, std::hash<Ipv6>> turns_v6_;
};

}  // namespace nm
