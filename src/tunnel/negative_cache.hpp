#pragma once
// Addresses the cluster did not know, remembered briefly so that a flood naming them costs no
// further table queries (one per address per TTL). Bounded: when full it starts over. Times are
// the conversion cache's milliseconds (ConversionCache::now_ms). Not thread-safe: one per shard.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>

#include "core/address.hpp"

namespace nm {

class NegativeCache {
  public:
    NegativeCache(std::chrono::milliseconds ttl, size_t max_entries)
        : ttl_ms_(static_cast<uint32_t>(ttl.count())), max_(max_entries) {}

    void add(Ipv4 address, uint32_t now_ms) {
        if (known_.size() >= max_) known_ = {};  // a flood of distinct addresses: start over
        known_.insert_or_assign(address.value, now_ms + ttl_ms_);
    }
    // Whether `address` was added less than the TTL ago; a stale entry is removed (and the
    // memory of an emptied cache given back).
    bool contains(Ipv4 address, uint32_t now_ms) {
        auto it = known_.find(address.value);
        if (it == known_.end()) return false;
        if (static_cast<int32_t>(now_ms - it->second) < 0) return true;
        known_.erase(it);
        if (known_.empty()) known_ = {};
        return false;
    }
    size_t size() const { return known_.size(); }

  private:
    uint32_t ttl_ms_;
    size_t max_;
    boost::unordered_flat_map<uint32_t, uint32_t> known_;  // address -> expiry (ms)
};

}  // namespace nm
