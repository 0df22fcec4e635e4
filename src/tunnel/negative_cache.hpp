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

    void add(Ipv4 address, uint32_t now_ms) { add(known_, address.value, now_ms); }
    void add(const Ipv6& address, uint32_t now_ms) { add(known_v6_, address, now_ms); }
    // Whether `address` was added less than the TTL ago; a stale entry is removed (and the
    // memory of an emptied cache given back).
    bool contains(Ipv4 address, uint32_t now_ms) { return contains(known_, address.value, now_ms); }
    bool contains(const Ipv6& address, uint32_t now_ms) {
        return contains(known_v6_, address, now_ms);
    }
    size_t size() const { return known_.size() + known_v6_.size(); }

  private:
    template <class Map, class Key>
    void add(Map& known, const Key& key, uint32_t now_ms) {
        if (known.size() >= max_) known = {};  // a flood of distinct addresses: start over
        known.insert_or_assign(key, now_ms + ttl_ms_);
    }
    template <class Map, class Key>
    static bool contains(Map& known, const Key& key, uint32_t now_ms) {
        auto it = known.find(key);
        if (it == known.end()) return false;
        if (static_cast<int32_t>(now_ms - it->second) < 0) return true;
        known.erase(it);
        if (known.empty()) known = {};
        return false;
    }

    uint32_t ttl_ms_;
    size_t max_;
    // address -> expiry (ms), per family
    boost::unordered_flat_map<uint32_t, uint32_t> known_;
    boost::unordered_flat_map<Ipv6, uint32_t, std::hash<Ipv6>> known_v6_;
};

}  // namespace nm
