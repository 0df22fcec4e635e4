#pragma once
// Which ServiceIPs (and nsips of direct traffic) one shard's outgoing packets used, so that the
// table query client keeps its interest in busy jobs. The data path marks a cached flow's
// destination at most once per second of the cache's clock, and shard 0 drains every shard's
// marks when it sweeps for idle jobs: no message between shards per packet.
#include <boost/unordered/unordered_flat_set.hpp>
#include <cstdint>
#include <vector>

#include "core/address.hpp"

namespace nm {

class ServiceUse {
  public:
    // Any packet to `destination` (a new flow, or direct traffic to an nsip).
    void mark(Ipv4 destination) { used_.insert(destination.value); }
    // A packet of a cached flow last used at `last_ms`, now `now_ms` (the cache's clock): marks
    // the destination only when the flow enters a new second (1024 ms), so busy flows cost a
    // shift and a compare per packet.
    void mark_flow(Ipv4 destination, uint32_t last_ms, uint32_t now_ms) {
        if ((last_ms >> 10) != (now_ms >> 10)) mark(destination);
    }
    // The destinations marked since the last drain.
    std::vector<Ipv4> drain() {
        std::vector<Ipv4> out;
        out.reserve(used_.size());
        for (uint32_t v : used_) out.push_back(Ipv4{v});
        used_.clear();
        return out;
    }

  private:
    boost::unordered_flat_set<uint32_t> used_;
};

}  // namespace nm
