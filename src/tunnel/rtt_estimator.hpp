#pragma once
// Round-trip times to peer nodes (protocol.md "Closest"): samples from ICMP echo probes and from
// the TCP handshakes the data path carries, smoothed per node, with the age of the last sample.
// A sample counts as the lowest of it and the node's two before it (a late wake-up or a queue
// only ever adds time, so the distance is the minimum), and that moves the estimate a quarter
// of the way.
// Lives on shard 0; what the balancers rank by is a snapshot of it (RttEstimates) sent to every
// shard. Keyed by the peer node's underlay IPv4 address (its tunnel address, `nodeip`).
#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/address.hpp"
#include "tunnel/balancer.hpp"

namespace nm {

enum class RttSource : uint8_t { probe, passive };

// One node's state, as GET /status and /metrics show it.
struct PeerRtt {
    using Clock = std::chrono::steady_clock;
    std::optional<std::chrono::microseconds> smoothed;  // none before the first sample
    // What the balancers see: moves only when `smoothed` moved far from it (hysteresis).
    std::chrono::microseconds published{0};
    Clock::time_point last_sample{};
    std::chrono::microseconds last_rtt{0};
    std::array<std::chrono::microseconds, 3> recent{};  // the last samples, for their minimum
    uint8_t recent_count = 0;
    uint64_t probes_sent = 0, probe_replies = 0, probes_lost = 0, passive_samples = 0;
};

struct RttEstimatorOptions {
    // A node with no sample for this long ranks last again (unknown) until it answers.
    std::chrono::milliseconds stale_after{50'000};
    size_t max_nodes = 4096;  // peers tracked at most; samples for more are ignored
};

class RttEstimator {
  public:
    using Clock = PeerRtt::Clock;
    explicit RttEstimator(RttEstimatorOptions options = {}) : options_(options) {}

    // The nodes to measure: new ones are added, others forgotten (with their counts).
    void set_peers(std::span<const Ipv4> peers);
    // A round trip measured now. Ignored for a node that is not a peer.
    void add_sample(Ipv4 node, std::chrono::microseconds rtt, RttSource source,
                    Clock::time_point now);
    void probe_sent(Ipv4 node);
    void probe_lost(Ipv4 node);

    // Whether the node has a sample younger than stale_after.
    bool fresh(const PeerRtt& peer, Clock::time_point now) const;
    // The published estimates of fresh nodes: what the balancers rank by.
    RttEstimates snapshot(Clock::time_point now) const;

    const boost::unordered_flat_map<uint32_t, PeerRtt>& peers() const { return peers_; }
    const PeerRtt* find(Ipv4 node) const;
    const RttEstimatorOptions& options() const { return options_; }

  private:
    RttEstimatorOptions options_;
    boost::unordered_flat_map<uint32_t, PeerRtt> peers_;
};

}  // namespace nm
