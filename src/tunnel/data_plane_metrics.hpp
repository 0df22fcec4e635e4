#pragma once
// The data plane's numbers for GET /metrics: every shard's counters, copied on that shard, and
// their sums in Prometheus text.
#include <array>
#include <cstddef>
#include <vector>

#include "core/metrics_text.hpp"
#include "tunnel/forwarder.hpp"
#include "tunnel/uring.hpp"

namespace nm {

struct ShardSnapshot {
    ForwarderCounters forwarder;
    PathCounters path;
    TunQueueCounters tun;
    UdpTunnelCounters udp;
    MergeCounters merge;
    size_t flows = 0;
    UringCounters uring{};
    std::array<LoopState, 3> loops;
};

// True while every loop of every shard runs.
bool all_loops_up(const std::vector<ShardSnapshot>& shards);

// Loops, flows, packets, bytes, drops by reason, hand-offs, merges, table queries started, the
// rings' counters (`rings`: --io uring) and the namespace's kernel UDP errors.
void append_data_plane_metrics(MetricsText& m, const std::vector<ShardSnapshot>& shards,
                               bool rings);

}  // namespace nm
