#pragma once
// A token bucket per source address: `rate` queries per second, bursts of up to 2 x rate.
// Bounded: past `max_sources` buckets, full ones are forgotten.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <cstdint>

#include "core/address.hpp"

namespace nm {

class RateLimiter {
  public:
    using Clock = std::chrono::steady_clock;
    explicit RateLimiter(unsigned rate, size_t max_sources = 4096)
        : rate_(rate), max_sources_(max_sources) {}
    // True when `source` may send one more query now (always, with rate 0).
    bool allow(Ipv4 source, Clock::time_point now = Clock::now());

  private:
    struct Bucket {
        double tokens;
        Clock::time_point last;
    };
    unsigned rate_;
    size_t max_sources_;
    boost::unordered_flat_map<uint32_t, Bucket> buckets_;
};

}  // namespace nm
